//! The media-aware bounded queue that sits in front of every receiver (a viewer connection on our
//! server, a relay connection in our client).
//!
//! Why one queue type for all of them: the drop policy is the product's promise — a slow receiver
//! loses frames up to the next keyframe, never memory, and never delays anybody else — and it must
//! be the same wherever frames wait for a socket.
//!
//! Policy, applied on [`OutQueue::push`]:
//! - **Control** items (protocol packets, acks, announces) are never dropped by policy. To make room
//!   for one, queued media is evicted; if it still does not fit, [`Push::Overflow`] tells the owner to
//!   disconnect that receiver.
//! - **Video**: a track is *synced* once a keyframe of it has been queued. Delta frames of an unsynced
//!   track are dropped (a decoder could not use them). When a video frame does not fit, every queued
//!   frame of that track is evicted and the track becomes unsynced, so the receiver resumes at the
//!   next keyframe with a fresh GOP; a keyframe that does not fit first evicts its own track's older
//!   frames (they are stale by definition), then audio and volatile items.
//! - **Audio**: when full, the oldest queued audio frames of the same track make room; if that is not
//!   enough, the new frame is dropped.
//! - **Volatile**: dropped when it does not fit.
//!
//! Bounds are in items and in bytes (the caller states each item's size).
//!
//! A leaf at the crate root: it imports nothing of the crate, so the server, the client and the
//! hub all use it without depending on each other.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

/// How an item may be treated when the receiver cannot keep up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Class {
    /// Must be delivered; overflow disconnects the receiver.
    Control,
    /// A video frame; dropped up to the next keyframe of its track when the receiver is behind.
    Video {
        /// The track, unique across streams (e.g. `cam0/video`).
        track: Arc<str>,
        /// A keyframe (a decoder can start here).
        key: bool,
    },
    /// An audio frame; dropped oldest-first within its track.
    Audio {
        /// The track, unique across streams (e.g. `cam0/audio`).
        track: Arc<str>,
    },
    /// Best effort: dropped when it does not fit.
    Volatile,
}

impl Class {
    fn track(&self) -> Option<&Arc<str>> {
        match self {
            Class::Video { track, .. } | Class::Audio { track } => Some(track),
            Class::Control | Class::Volatile => None,
        }
    }
}

/// What happened to a pushed item.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// The item is queued.
    Queued,
    /// The item was dropped by policy (counted in [`QueueStats`]).
    Dropped,
    /// A control item did not fit even after evicting all media: disconnect the receiver.
    Overflow,
}

/// Counters a queue keeps for status pages and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Items accepted by `push`.
    pub queued: u64,
    /// Video frames dropped (refused or evicted).
    pub dropped_video: u64,
    /// Audio frames dropped (refused or evicted).
    pub dropped_audio: u64,
    /// Volatile items dropped.
    pub dropped_volatile: u64,
    /// Control items that did not fit.
    pub overflows: u64,
}

impl QueueStats {
    /// All media and volatile drops together.
    pub fn dropped(&self) -> u64 {
        self.dropped_video + self.dropped_audio + self.dropped_volatile
    }
}

struct Entry<T> {
    item: T,
    class: Class,
    bytes: usize,
}

/// A bounded FIFO with the media drop policy described in the module docs.
pub struct OutQueue<T> {
    entries: VecDeque<Entry<T>>,
    bytes: usize,
    max_items: usize,
    max_bytes: usize,
    synced: HashSet<Arc<str>>,
    stats: QueueStats,
}

impl<T> OutQueue<T> {
    /// A queue holding at most `max_items` items and `max_bytes` bytes (both at least 1).
    pub fn new(max_items: usize, max_bytes: usize) -> Self {
        OutQueue {
            entries: VecDeque::new(),
            bytes: 0,
            max_items: max_items.max(1),
            max_bytes: max_bytes.max(1),
            synced: HashSet::new(),
            stats: QueueStats::default(),
        }
    }

    /// Offers an item of `bytes` bytes; see the module docs for the policy.
    pub fn push(&mut self, item: T, class: Class, bytes: usize) -> Push {
        match &class {
            Class::Control => {
                if !self.fits(bytes) {
                    self.evict_where(|c| !matches!(c, Class::Control), bytes);
                }
                if !self.fits(bytes) {
                    self.stats.overflows += 1;
                    return Push::Overflow;
                }
            }
            Class::Video { track, key } => {
                if !*key && !self.synced.contains(track) {
                    self.stats.dropped_video += 1;
                    return Push::Dropped;
                }
                if !self.fits(bytes) {
                    let track = track.clone();
                    self.evict_track(&track);
                    if *key {
                        self.evict_where(
                            |c| matches!(c, Class::Audio { .. } | Class::Volatile),
                            bytes,
                        );
                    }
                    // A delta frame cannot follow the GOP just evicted: wait for the next keyframe.
                    if !*key || !self.fits(bytes) {
                        self.stats.dropped_video += 1;
                        return Push::Dropped;
                    }
                }
                if *key {
                    self.synced.insert(track.clone());
                }
            }
            Class::Audio { track } => {
                if !self.fits(bytes) {
                    let track = track.clone();
                    self.evict_where(
                        |c| matches!(c, Class::Audio { track: t } if *t == track),
                        bytes,
                    );
                }
                if !self.fits(bytes) {
                    self.stats.dropped_audio += 1;
                    return Push::Dropped;
                }
            }
            Class::Volatile => {
                if !self.fits(bytes) {
                    self.stats.dropped_volatile += 1;
                    return Push::Dropped;
                }
            }
        }
        self.bytes += bytes;
        self.entries.push_back(Entry { item, class, bytes });
        self.stats.queued += 1;
        Push::Queued
    }

    /// Takes the oldest item.
    pub fn pop(&mut self) -> Option<T> {
        let entry = self.entries.pop_front()?;
        self.bytes -= entry.bytes;
        Some(entry.item)
    }

    /// The oldest item, left in place.
    pub fn front(&self) -> Option<&T> {
        self.entries.front().map(|e| &e.item)
    }

    /// The queued items, oldest first: a writer can point a vectored write at them and pop only
    /// what the socket took, so the rest stays under the drop policy.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.entries.iter().map(|e| &e.item)
    }

    /// Drops all queued media and volatile items and unsyncs every video track, so that nothing
    /// stale is replayed and video resumes at the next keyframe (used after a reconnect).
    pub fn clear_media(&mut self) {
        let before = self.entries.len();
        let mut kept = VecDeque::with_capacity(before);
        for entry in self.entries.drain(..) {
            match entry.class {
                Class::Control => kept.push_back(entry),
                Class::Video { .. } => {
                    self.stats.dropped_video += 1;
                    self.bytes -= entry.bytes;
                }
                Class::Audio { .. } => {
                    self.stats.dropped_audio += 1;
                    self.bytes -= entry.bytes;
                }
                Class::Volatile => {
                    self.stats.dropped_volatile += 1;
                    self.bytes -= entry.bytes;
                }
            }
        }
        self.entries = kept;
        self.synced.clear();
    }

    /// Number of queued items.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes currently queued (as stated by the pushers).
    pub fn bytes(&self) -> usize {
        self.bytes
    }

    /// The counters so far.
    pub fn stats(&self) -> QueueStats {
        self.stats
    }

    fn fits(&self, bytes: usize) -> bool {
        self.entries.len() < self.max_items && self.bytes + bytes <= self.max_bytes
    }

    /// Evicts every queued frame of `track` and unsyncs it.
    fn evict_track(&mut self, track: &Arc<str>) {
        self.synced.remove(track);
        self.evict_where(|c| c.track() == Some(track), usize::MAX);
    }

    /// Evicts matching entries, oldest first, until an item of `needed` bytes fits (or all matching
    /// entries are gone when `needed` is `usize::MAX`). Evicting a video frame unsyncs its track and
    /// takes the rest of that track's queued frames with it, so no broken GOP stays queued.
    fn evict_where(&mut self, matches: impl Fn(&Class) -> bool, needed: usize) {
        let mut i = 0;
        while i < self.entries.len() {
            if needed != usize::MAX && self.fits(needed) {
                return;
            }
            if !matches(&self.entries[i].class) {
                i += 1;
                continue;
            }
            let Some(entry) = self.entries.remove(i) else {
                return;
            };
            self.bytes -= entry.bytes;
            match entry.class {
                Class::Video { track, .. } => {
                    self.stats.dropped_video += 1;
                    self.synced.remove(&track);
                    self.drop_rest_of_track(&track, i);
                }
                Class::Audio { .. } => self.stats.dropped_audio += 1,
                Class::Volatile => self.stats.dropped_volatile += 1,
                Class::Control => {}
            }
        }
    }

    /// Removes the video frames of `track` at index `from` and later.
    fn drop_rest_of_track(&mut self, track: &Arc<str>, from: usize) {
        let mut j = from;
        while j < self.entries.len() {
            let same =
                matches!(&self.entries[j].class, Class::Video { track: t, .. } if t == track);
            if same {
                if let Some(entry) = self.entries.remove(j) {
                    self.bytes -= entry.bytes;
                    self.stats.dropped_video += 1;
                }
            } else {
                j += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn video(track: &str, key: bool) -> Class {
        Class::Video {
            track: track.into(),
            key,
        }
    }

    fn audio(track: &str) -> Class {
        Class::Audio {
            track: track.into(),
        }
    }

    fn drain<T>(q: &mut OutQueue<T>) -> Vec<T> {
        std::iter::from_fn(|| q.pop()).collect()
    }

    #[test]
    fn delta_frames_before_the_first_keyframe_are_dropped() {
        let mut q = OutQueue::new(10, 1000);
        assert_eq!(q.push(1, video("v", false), 10), Push::Dropped);
        assert_eq!(q.push(2, video("v", true), 10), Push::Queued);
        assert_eq!(q.push(3, video("v", false), 10), Push::Queued);
        assert_eq!(drain(&mut q), vec![2, 3]);
        assert_eq!(q.stats().dropped_video, 1);
    }

    #[test]
    fn full_queue_drops_video_up_to_the_next_keyframe() {
        let mut q = OutQueue::new(3, 1000);
        q.push(1, video("v", true), 10);
        q.push(2, video("v", false), 10);
        q.push(3, video("v", false), 10);
        // Full: this delta frame evicts the whole queued GOP and is dropped itself.
        assert_eq!(q.push(4, video("v", false), 10), Push::Dropped);
        assert!(q.is_empty());
        assert_eq!(q.push(5, video("v", false), 10), Push::Dropped);
        assert_eq!(q.push(6, video("v", true), 10), Push::Queued);
        assert_eq!(q.push(7, video("v", false), 10), Push::Queued);
        assert_eq!(drain(&mut q), vec![6, 7]);
        assert_eq!(q.stats().dropped_video, 5);
    }

    #[test]
    fn a_keyframe_replaces_the_stale_gop_of_its_track() {
        let mut q = OutQueue::new(3, 1000);
        q.push(1, video("v", true), 10);
        q.push(2, video("v", false), 10);
        q.push(3, audio("a"), 10);
        assert_eq!(q.push(4, video("v", true), 10), Push::Queued);
        assert_eq!(drain(&mut q), vec![3, 4]);
    }

    #[test]
    fn other_tracks_keep_their_frames_when_one_overflows_by_bytes() {
        let mut q = OutQueue::new(100, 100);
        q.push(1, video("a", true), 30);
        q.push(2, video("b", true), 30);
        q.push(3, video("a", false), 30);
        // 90 bytes queued; b's delta does not fit: only b's frames are evicted.
        assert_eq!(q.push(4, video("b", false), 20), Push::Dropped);
        assert_eq!(drain(&mut q), vec![1, 3]);
    }

    #[test]
    fn audio_drops_oldest_first() {
        let mut q = OutQueue::new(3, 1000);
        for i in 1..=5 {
            assert_eq!(q.push(i, audio("a"), 10), Push::Queued);
        }
        assert_eq!(drain(&mut q), vec![3, 4, 5]);
        assert_eq!(q.stats().dropped_audio, 2);
    }

    #[test]
    fn control_evicts_media_and_overflows_only_when_full_of_control() {
        let mut q = OutQueue::new(2, 1000);
        q.push(1, video("v", true), 10);
        q.push(2, video("v", false), 10);
        assert_eq!(q.push(3, Class::Control, 10), Push::Queued);
        assert_eq!(q.push(4, Class::Control, 10), Push::Queued);
        assert_eq!(q.push(5, Class::Control, 10), Push::Overflow);
        assert_eq!(drain(&mut q), vec![3, 4]);
        // The evicted video track must resume at a keyframe.
        assert_eq!(q.push(6, video("v", false), 10), Push::Dropped);
    }

    #[test]
    fn volatile_is_dropped_when_full() {
        let mut q = OutQueue::new(1, 1000);
        assert_eq!(q.push(1, Class::Volatile, 10), Push::Queued);
        assert_eq!(q.push(2, Class::Volatile, 10), Push::Dropped);
        assert_eq!(q.stats().dropped_volatile, 1);
    }

    #[test]
    fn clear_media_keeps_control_and_resyncs_video() {
        let mut q = OutQueue::new(10, 1000);
        q.push(1, video("v", true), 10);
        q.push(2, Class::Control, 10);
        q.push(3, audio("a"), 10);
        q.clear_media();
        assert_eq!(q.bytes(), 10);
        assert_eq!(q.push(4, video("v", false), 10), Push::Dropped);
        assert_eq!(drain(&mut q), vec![2]);
    }

    #[test]
    fn an_item_larger_than_the_byte_bound_never_enters() {
        let mut q = OutQueue::new(10, 100);
        assert_eq!(q.push(1, video("v", true), 101), Push::Dropped);
        assert_eq!(q.push(2, Class::Control, 101), Push::Overflow);
        assert!(q.is_empty());
        assert_eq!(q.bytes(), 0);
    }

    /// Runs `ops` (kind, track, bytes, key) against a small queue and checks that whatever is
    /// pushed and popped, the bounds hold, byte accounting is exact, and no broken GOP is
    /// delivered: a delivered delta frame's predecessor in its track was delivered too.
    fn check_bounds_and_gops(
        ops: &[(u8, u8, usize, bool)],
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        let mut q: OutQueue<usize> = OutQueue::new(8, 120);
        let mut pushed_video: std::collections::HashMap<u8, Vec<(usize, bool)>> =
            Default::default();
        let mut delivered = std::collections::HashSet::new();
        for (seq, &(kind, track, bytes, key)) in ops.iter().enumerate() {
            let t: Arc<str> = format!("t{track}").into();
            let class = match kind {
                0 => Class::Control,
                1 | 2 => {
                    pushed_video.entry(track).or_default().push((seq, key));
                    Class::Video { track: t, key }
                }
                3 => Class::Audio { track: t },
                4 => Class::Volatile,
                _ => {
                    if let Some(s) = q.pop() {
                        delivered.insert(s);
                    }
                    continue;
                }
            };
            let _ = q.push(seq, class, bytes);
            proptest::prop_assert!(q.len() <= 8);
            proptest::prop_assert!(q.bytes() <= 120);
        }
        delivered.extend(std::iter::from_fn(|| q.pop()));
        proptest::prop_assert_eq!(q.bytes(), 0);
        for frames in pushed_video.values() {
            for pair in frames.windows(2) {
                let ((prev, _), (cur, cur_key)) = (pair[0], pair[1]);
                if delivered.contains(&cur) && !cur_key {
                    proptest::prop_assert!(
                        delivered.contains(&prev),
                        "delta {} delivered without {}",
                        cur,
                        prev
                    );
                }
            }
            if let Some(&(first, key)) = frames.first() {
                proptest::prop_assert!(key || !delivered.contains(&first));
            }
        }
        Ok(())
    }

    /// A case proptest once shrank to (formerly kept in proptest-regressions/): control items
    /// fill the byte bound, then a keyframe of one track and deltas of another arrive.
    #[test]
    fn control_fill_then_keyframe_and_foreign_deltas_keep_gops_whole() {
        let mut ops = vec![
            (0, 0, 1, false),
            (0, 0, 18, false),
            (0, 0, 8, false),
            (0, 0, 1, false),
            (0, 0, 1, false),
            (0, 0, 11, false),
            (0, 0, 12, false),
            (1, 2, 14, true),
            (1, 0, 1, false),
            (1, 0, 1, false),
            (1, 2, 1, false),
        ];
        ops.extend([(1, 0, 1, false); 6]);
        ops.push((3, 0, 1, false));
        if let Err(e) = check_bounds_and_gops(&ops) {
            panic!("{e}");
        }
    }

    proptest::proptest! {
        #[test]
        fn bounds_and_gop_integrity_hold(ops in proptest::collection::vec((0u8..6, 0u8..3, 1usize..40, proptest::bool::ANY), 0..400)) {
            check_bounds_and_gops(&ops)?;
        }
    }
}
