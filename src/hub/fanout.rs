//! The hub proper: stream registry, per-track sequence numbers and late-joiner cache, watch
//! bookkeeping, and the fan-out of each frame — encoded once — to every receiver that watches it.

use super::adapter::Adapter;
use super::cache::{CacheBudget, CacheLimits, GopCache};
use super::picture::NewestPicture;
use super::snapshot::{HubSnapshot, ReceiverCounters, StreamSnapshot, TrackSnapshot};
use crate::contract::{
    Announce, ContractEvent, MediaFrame, MediaMeta, Status, TrackInfo, TrackKind, TrackState,
};
use crate::queue::{Class, Push};
use crate::sync::lock;
use bytes::Bytes;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

/// An event together with its wire form `P`, built once and shared by every receiver.
#[derive(Debug)]
pub struct EncodedEvent<P> {
    /// The contract event (name, JSON argument, binary attachment).
    pub event: ContractEvent,
    /// The transport's encoding of `event` (e.g. the Socket.IO packet for the viewer namespace).
    pub wire: P,
}

/// What receivers are handed: one allocation per event, whatever the number of receivers.
pub type SharedEvent<P> = Arc<EncodedEvent<P>>;

/// A receiver's bounded outgoing queue (a viewer's connection, a relay client). `offer` must not
/// block: it applies the [`OutQueue`](crate::queue::OutQueue) drop policy and reports the outcome.
/// It runs under the hub's lock, so it must not call back into the hub (defer, e.g. on a task,
/// whatever an offer triggers — such as removing a receiver whose connection just overflowed).
pub trait Sink<P>: Send + Sync + 'static {
    /// Offers one packet of `bytes` bytes with its drop `class`.
    fn offer(&self, packet: &SharedEvent<P>, class: Class, bytes: usize) -> Push;
}

/// Identifies a receiver attached to the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ReceiverId(u64);

/// Why a hub call was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HubError {
    /// No stream with this id is announced.
    #[error("unknown stream {0:?}")]
    UnknownStream(String),
    /// The stream has no track with this id.
    #[error("stream {stream:?} has no track {track:?}")]
    UnknownTrack {
        /// Stream id.
        stream: String,
        /// Track id.
        track: String,
    },
    /// The receiver was removed.
    #[error("unknown receiver")]
    UnknownReceiver,
    /// An announce is malformed (e.g. two tracks with the same id).
    #[error("invalid announce: {0}")]
    InvalidAnnounce(String),
}

/// Something another node published, handed in by an [`Adapter`].
#[derive(Debug, Clone)]
pub enum Remote {
    /// A stream was announced or changed.
    Announce(Announce),
    /// A stream is gone.
    Withdraw(String),
    /// A track changed state.
    Status(Status),
    /// A frame, keeping the origin's seq.
    Frame(MediaMeta, Bytes),
}

struct TrackSlot<P> {
    info: TrackInfo,
    /// `stream/track`: the queue's track key, unique across streams.
    key: Arc<str>,
    next_seq: u64,
    state: TrackState,
    reason: String,
    /// The current `status` event, sent to every new watcher.
    status_packet: SharedEvent<P>,
    cache: GopCache<SharedEvent<P>>,
    frames_in: u64,
    bytes_in: u64,
    frames_out: u64,
    dropped: u64,
    window: (u64, u64),
    bitrate_bps: u64,
}

impl<P> TrackSlot<P> {
    fn status(&self, stream: &str) -> Status {
        Status {
            stream: stream.to_owned(),
            track: self.info.track.clone(),
            state: self.state,
            reason: self.reason.clone(),
        }
    }

    /// Sliding one-second bitrate on media time (pts), so it is exact for remote frames too.
    fn account(&mut self, pts: u64, bytes: usize) {
        self.frames_in += 1;
        self.bytes_in += bytes as u64;
        let (start, acc) = self.window;
        if self.frames_in == 1 || pts < start {
            self.window = (pts, bytes as u64);
        } else if pts - start >= 1_000_000 {
            self.bitrate_bps = acc * 8 * 1_000_000 / (pts - start);
            self.window = (pts, bytes as u64);
        } else {
            self.window.1 += bytes as u64;
        }
    }
}

struct StreamSlot<P> {
    announce: Arc<Announce>,
    announce_packet: SharedEvent<P>,
    tracks: Vec<TrackSlot<P>>,
}

#[derive(Default)]
struct Watch {
    /// `None`: every track.
    tracks: Option<BTreeSet<String>>,
    /// Video tracks whose next delivered frame must be a keyframe.
    waiting_key: HashSet<String>,
}

impl Watch {
    fn wants(&self, track: &str) -> bool {
        self.tracks.as_ref().is_none_or(|t| t.contains(track))
    }
}

struct ReceiverSlot<P> {
    sink: Arc<dyn Sink<P>>,
    /// Follows every stream, present and future (relay clients).
    all: bool,
    watches: HashMap<String, Watch>,
    counters: ReceiverCounters,
}

struct State<P> {
    streams: BTreeMap<String, StreamSlot<P>>,
    receivers: HashMap<ReceiverId, ReceiverSlot<P>>,
    /// stream → receivers watching it (also for streams currently not announced).
    watchers: HashMap<String, BTreeSet<ReceiverId>>,
    next_receiver: u64,
}

/// Work for the adapter, done after the lock is released.
enum Propagate {
    Announced(Arc<Announce>),
    Withdrawn(String),
    Status(Status),
    Frame(MediaMeta, Bytes),
    Watched(String),
    Unwatched(String),
}

/// The stream hub. Cheap to share behind an `Arc`; all methods take `&self` and never block on a
/// receiver (sinks are non-blocking bounded queues).
pub struct Hub<P> {
    state: Mutex<State<P>>,
    encode: Box<dyn Fn(&ContractEvent) -> P + Send + Sync>,
    adapter: Arc<dyn Adapter>,
    limits: CacheLimits,
}

impl<P: Send + Sync + 'static> Hub<P> {
    /// A hub whose events are encoded by `encode` (once per event) and propagated by `adapter`.
    pub fn new(
        encode: impl Fn(&ContractEvent) -> P + Send + Sync + 'static,
        adapter: Arc<dyn Adapter>,
        limits: CacheLimits,
    ) -> Self {
        Hub {
            state: Mutex::new(State {
                streams: BTreeMap::new(),
                receivers: HashMap::new(),
                watchers: HashMap::new(),
                next_receiver: 0,
            }),
            encode: Box::new(encode),
            adapter,
            limits,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State<P>> {
        // A panic elsewhere must not take the media path down with it.
        lock(&self.state)
    }

    fn packet(&self, event: ContractEvent) -> SharedEvent<P> {
        let wire = (self.encode)(&event);
        Arc::new(EncodedEvent { event, wire })
    }

    fn propagate(&self, work: Vec<Propagate>) {
        for w in work {
            match w {
                Propagate::Announced(a) => self.adapter.announced(&a),
                Propagate::Withdrawn(s) => self.adapter.withdrawn(&s),
                Propagate::Status(s) => self.adapter.status(&s),
                Propagate::Frame(m, d) => self.adapter.frame(&m, &d),
                Propagate::Watched(s) => self.adapter.watched(&s),
                Propagate::Unwatched(s) => self.adapter.unwatched(&s),
            }
        }
    }

    /// Announces a local stream, or changes its tracks. Watchers get the new `announce`; tracks whose
    /// description changed restart (fresh seq and cache, viewers wait for their next keyframe).
    pub fn announce(&self, announce: Announce) -> Result<(), HubError> {
        let a = self.announce_inner(announce, None)?;
        self.propagate(vec![Propagate::Announced(a)]);
        Ok(())
    }

    /// [`Hub::announce`] for a stream whose late-joiner cache counts against `budget`, which the
    /// streams of one publisher share (tracks kept from an earlier announce keep their budget).
    pub fn announce_within(
        &self,
        announce: Announce,
        budget: &Arc<CacheBudget>,
    ) -> Result<(), HubError> {
        let a = self.announce_inner(announce, Some(budget))?;
        self.propagate(vec![Propagate::Announced(a)]);
        Ok(())
    }

    fn announce_inner(
        &self,
        announce: Announce,
        budget: Option<&Arc<CacheBudget>>,
    ) -> Result<Arc<Announce>, HubError> {
        let mut ids = HashSet::new();
        if let Some(t) = announce.tracks.iter().find(|t| !ids.insert(&t.track)) {
            return Err(HubError::InvalidAnnounce(format!(
                "duplicate track {:?}",
                t.track
            )));
        }
        let announce = Arc::new(announce);
        let packet = self.packet(ContractEvent::announce(&announce));
        let mut guard = self.lock();
        let st = &mut *guard;
        let name = announce.stream.clone();
        let mut old = st.streams.remove(&name);
        if let Some(o) = &old
            && *o.announce == *announce
        {
            st.streams.insert(name, old.take().expect("checked above"));
            return Ok(announce);
        }
        let mut restarted = Vec::new();
        let tracks = announce
            .tracks
            .iter()
            .map(|info| {
                let kept = old.as_mut().and_then(|o| {
                    let i = o.tracks.iter().position(|t| t.info == *info)?;
                    Some(o.tracks.swap_remove(i))
                });
                kept.unwrap_or_else(|| {
                    restarted.push(info.track.clone());
                    let live = Status {
                        stream: name.clone(),
                        track: info.track.clone(),
                        state: TrackState::Live,
                        reason: String::new(),
                    };
                    TrackSlot {
                        status_packet: self.packet(ContractEvent::status(&live)),
                        info: info.clone(),
                        key: format!("{}/{}", name, info.track).into(),
                        next_seq: 0,
                        state: TrackState::Live,
                        reason: String::new(),
                        cache: GopCache::new(self.limits, budget.cloned()),
                        frames_in: 0,
                        bytes_in: 0,
                        frames_out: 0,
                        dropped: 0,
                        window: (0, 0),
                        bitrate_bps: 0,
                    }
                })
            })
            .collect();
        st.streams.insert(
            name.clone(),
            StreamSlot {
                announce: announce.clone(),
                announce_packet: packet,
                tracks,
            },
        );
        let all: Vec<ReceiverId> = st
            .receivers
            .iter()
            .filter(|(_, r)| r.all && !r.watches.contains_key(&name))
            .map(|(id, _)| *id)
            .collect();
        for id in all {
            if let Some(r) = st.receivers.get_mut(&id) {
                r.watches.insert(name.clone(), Watch::default());
            }
            st.watchers.entry(name.clone()).or_default().insert(id);
        }
        let watchers: Vec<ReceiverId> = st
            .watchers
            .get(&name)
            .map(|w| w.iter().copied().collect())
            .unwrap_or_default();
        for id in watchers {
            if old.is_none() {
                // New (or returning) stream: the full late-joiner treatment.
                st.attach(id, &name);
            } else {
                st.reannounce(id, &name, &restarted);
            }
        }
        Ok(announce)
    }

    /// Removes a local stream (its publisher is gone). Watchers get `status` down for each track
    /// and stay registered: if the stream comes back they receive it again.
    pub fn withdraw(&self, stream: &str) -> Result<(), HubError> {
        self.withdraw_inner(stream)?;
        self.propagate(vec![Propagate::Withdrawn(stream.to_owned())]);
        Ok(())
    }

    fn withdraw_inner(&self, stream: &str) -> Result<(), HubError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let Some(slot) = st.streams.remove(stream) else {
            return Err(HubError::UnknownStream(stream.to_owned()));
        };
        let packets: Vec<SharedEvent<P>> = slot
            .tracks
            .iter()
            .map(|t| {
                self.packet(ContractEvent::status(&Status {
                    stream: stream.to_owned(),
                    track: t.info.track.clone(),
                    state: TrackState::Down,
                    reason: "stream withdrawn".into(),
                }))
            })
            .collect();
        for id in st.watchers_of(stream) {
            for p in &packets {
                st.push_control(id, p);
            }
        }
        Ok(())
    }

    /// Sets a local track live or down. Down clears its cache (no stale picture for late joiners)
    /// and makes watchers wait for a keyframe when it comes back. Watchers are told each change
    /// once: a status equal to the track's current one (state and reason) is not sent again.
    pub fn status(&self, status: Status) -> Result<(), HubError> {
        self.status_inner(&status)?;
        self.propagate(vec![Propagate::Status(status)]);
        Ok(())
    }

    fn status_inner(&self, status: &Status) -> Result<(), HubError> {
        let packet = self.packet(ContractEvent::status(status));
        let mut guard = self.lock();
        let st = &mut *guard;
        let slot = st.track_mut(&status.stream, &status.track)?;
        if slot.state == status.state && slot.reason == status.reason {
            return Ok(());
        }
        slot.state = status.state;
        slot.reason = status.reason.clone();
        slot.status_packet = packet.clone();
        if status.state == TrackState::Down {
            slot.cache.clear();
        }
        let is_video = slot.info.kind() == TrackKind::Video;
        for id in st.watchers_of(&status.stream) {
            if let Some(w) = st
                .receivers
                .get_mut(&id)
                .and_then(|r| r.watches.get_mut(&status.stream))
                && w.wants(&status.track)
            {
                if is_video && status.state == TrackState::Down {
                    w.waiting_key.insert(status.track.clone());
                }
                st.push_control(id, &packet);
            }
        }
        Ok(())
    }

    /// Publishes a locally captured frame: gives it the next seq of its track, encodes its `media`
    /// event once, caches it for late joiners and offers it to every watcher. Returns its meta.
    pub fn publish(&self, frame: MediaFrame) -> Result<MediaMeta, HubError> {
        let data = frame.data.clone();
        let meta = self.ingest(
            &frame.stream,
            &frame.track,
            frame.pts,
            frame.key,
            frame.t,
            frame.data,
            None,
        )?;
        self.propagate(vec![Propagate::Frame(meta.clone(), data)]);
        Ok(meta)
    }

    /// Applies what another node published (called by the adapter); nothing is propagated back.
    pub fn apply_remote(&self, remote: Remote) -> Result<(), HubError> {
        match remote {
            Remote::Announce(a) => self.announce_inner(a, None).map(drop),
            Remote::Withdraw(s) => self.withdraw_inner(&s),
            Remote::Status(s) => self.status_inner(&s),
            Remote::Frame(m, data) => self
                .ingest(&m.stream, &m.track, m.pts, m.key, m.t, data, Some(m.seq))
                .map(drop),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn ingest(
        &self,
        stream: &str,
        track: &str,
        pts: u64,
        key: bool,
        t: u64,
        data: Bytes,
        seq: Option<u64>,
    ) -> Result<MediaMeta, HubError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let slot = st.track_mut(stream, track)?;
        let seq = seq.unwrap_or(slot.next_seq);
        slot.next_seq = seq + 1;
        let meta = MediaMeta {
            stream: stream.to_owned(),
            track: track.to_owned(),
            seq,
            pts,
            key,
            t,
        };
        let bytes = data.len();
        let packet = self.packet(ContractEvent::media(&meta, data));
        let size = packet.event.size();
        let video = slot.info.kind() == TrackKind::Video;
        slot.account(pts, bytes);
        if video {
            slot.cache.record(packet.clone(), key, size);
        }
        let class = if video {
            Class::Video {
                track: slot.key.clone(),
                key,
            }
        } else {
            Class::Audio {
                track: slot.key.clone(),
            }
        };
        let went_live = slot.state == TrackState::Down;
        if went_live {
            slot.state = TrackState::Live;
            slot.reason.clear();
        }
        let live = went_live.then(|| {
            slot.status_packet = self.packet(ContractEvent::status(&slot.status(stream)));
            slot.status_packet.clone()
        });
        let (mut out, mut dropped) = (0, 0);
        for id in st.watchers_of(stream) {
            let Some(r) = st.receivers.get_mut(&id) else {
                continue;
            };
            let Some(w) = r.watches.get_mut(stream) else {
                continue;
            };
            if !w.wants(track) {
                continue;
            }
            let skip =
                video && w.waiting_key.contains(track) && !(key && w.waiting_key.remove(track));
            if let Some(p) = &live {
                push_counted(r, p, Class::Control);
            }
            if skip {
                continue;
            }
            match push_counted(r, &packet, class.clone()) {
                Push::Queued => out += 1,
                Push::Dropped => dropped += 1,
                Push::Overflow => {}
            }
        }
        if let Ok(slot) = st.track_mut(stream, track) {
            slot.frames_out += out;
            slot.dropped += dropped;
        }
        Ok(meta)
    }

    /// Attaches a receiver (it watches nothing yet). `all`: it follows every stream, present and
    /// future, and is sent each one at once (what a relay client wants).
    pub fn add_receiver(&self, sink: Arc<dyn Sink<P>>, all: bool) -> ReceiverId {
        let mut guard = self.lock();
        let st = &mut *guard;
        let id = ReceiverId(st.next_receiver);
        st.next_receiver += 1;
        st.receivers.insert(
            id,
            ReceiverSlot {
                sink,
                all,
                watches: HashMap::new(),
                counters: ReceiverCounters::default(),
            },
        );
        let mut work = Vec::new();
        if all {
            let names: Vec<String> = st.streams.keys().cloned().collect();
            for name in names {
                work.extend(st.start_watch(id, &name, None));
                st.attach(id, &name);
            }
        }
        drop(guard);
        self.propagate(work);
        id
    }

    /// Detaches a receiver and forgets its watches.
    pub fn remove_receiver(&self, id: ReceiverId) {
        let mut guard = self.lock();
        let st = &mut *guard;
        let mut work = Vec::new();
        if let Some(r) = st.receivers.remove(&id) {
            for name in r.watches.keys() {
                work.extend(st.stop_watch(id, name));
            }
        }
        drop(guard);
        self.propagate(work);
    }

    /// Sends a receiver everything it watches afresh — announce, status and the cached GOP — as a
    /// late joiner (a relay client after a reconnect, whose queue dropped everything stale).
    pub fn resync(&self, id: ReceiverId) -> Result<(), HubError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let names: Vec<String> = st
            .receivers
            .get(&id)
            .ok_or(HubError::UnknownReceiver)?
            .watches
            .keys()
            .cloned()
            .collect();
        for name in names {
            st.attach(id, &name);
        }
        Ok(())
    }

    /// Starts (or changes) watching `stream`, limited to `tracks` when given. The receiver is sent
    /// `announce`, each track's `status`, and the cached GOP (keyframe first) before any live frame.
    /// Returns the announce (the `watch` ack).
    pub fn watch(
        &self,
        id: ReceiverId,
        stream: &str,
        tracks: Option<Vec<String>>,
    ) -> Result<Arc<Announce>, HubError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        if !st.receivers.contains_key(&id) {
            return Err(HubError::UnknownReceiver);
        }
        let Some(slot) = st.streams.get(stream) else {
            return Err(HubError::UnknownStream(stream.to_owned()));
        };
        let announce = slot.announce.clone();
        if let Some(t) = tracks
            .iter()
            .flatten()
            .find(|t| !announce.tracks.iter().any(|a| a.track == **t))
        {
            return Err(HubError::UnknownTrack {
                stream: stream.to_owned(),
                track: t.clone(),
            });
        }
        let work = st.start_watch(id, stream, tracks.map(|t| t.into_iter().collect()));
        st.attach(id, stream);
        drop(guard);
        self.propagate(work.into_iter().collect());
        Ok(announce)
    }

    /// Stops watching `stream` (every stream when `None`).
    pub fn unwatch(&self, id: ReceiverId, stream: Option<&str>) -> Result<(), HubError> {
        let mut guard = self.lock();
        let st = &mut *guard;
        let names: Vec<String> = match (st.receivers.get(&id), stream) {
            (None, _) => return Err(HubError::UnknownReceiver),
            (Some(_), Some(s)) => vec![s.to_owned()],
            (Some(r), None) => r.watches.keys().cloned().collect(),
        };
        let mut work = Vec::new();
        for name in names {
            if let Some(r) = st.receivers.get_mut(&id) {
                r.watches.remove(&name);
            }
            work.extend(st.stop_watch(id, &name));
        }
        drop(guard);
        self.propagate(work);
        Ok(())
    }

    /// The announced streams (the `streams` ack), by id.
    pub fn streams(&self) -> Vec<Arc<Announce>> {
        self.lock()
            .streams
            .values()
            .map(|s| s.announce.clone())
            .collect()
    }

    /// Counters of every stream and track.
    pub fn snapshot(&self) -> HubSnapshot {
        let st = self.lock();
        HubSnapshot {
            streams: st
                .streams
                .iter()
                .map(|(name, s)| StreamSnapshot {
                    stream: name.clone(),
                    watchers: st.watchers.get(name).map_or(0, BTreeSet::len),
                    tracks: s
                        .tracks
                        .iter()
                        .map(|t| TrackSnapshot {
                            track: t.info.track.clone(),
                            kind: t.info.kind(),
                            codec: t.info.codec,
                            state: t.state,
                            reason: t.reason.clone(),
                            frames_in: t.frames_in,
                            bytes_in: t.bytes_in,
                            frames_out: t.frames_out,
                            dropped: t.dropped,
                            bitrate_bps: t.bitrate_bps,
                            cache_bytes: t.cache.bytes(),
                            seq: t.next_seq.checked_sub(1),
                            capture: t.info.capture.clone(),
                        })
                        .collect(),
                })
                .collect(),
            receivers: st.receivers.len(),
        }
    }

    /// Counters of one receiver.
    pub fn receiver_counters(&self, id: ReceiverId) -> Option<ReceiverCounters> {
        self.lock().receivers.get(&id).map(|r| r.counters)
    }

    /// The newest picture of `stream`'s first video track, from its late-joiner cache (snapshots
    /// read it): `None` while no keyframe is cached or when the stream has no video.
    pub fn newest_picture(&self, stream: &str) -> Result<Option<NewestPicture>, HubError> {
        let st = self.lock();
        let s = st
            .streams
            .get(stream)
            .ok_or_else(|| HubError::UnknownStream(stream.to_owned()))?;
        let Some(t) = s.tracks.iter().find(|t| t.info.kind() == TrackKind::Video) else {
            return Ok(None);
        };
        let (cached, _) = t.cache.snapshot();
        let info = t.info.clone();
        drop(st);
        Ok(NewestPicture::from_events(
            info,
            cached.iter().map(|(p, _)| &p.event),
        ))
    }
}

fn push_counted<P: Send + Sync + 'static>(
    r: &mut ReceiverSlot<P>,
    packet: &SharedEvent<P>,
    class: Class,
) -> Push {
    let media = !matches!(class, Class::Control | Class::Volatile);
    let result = r.sink.offer(packet, class, packet.event.size());
    match result {
        Push::Queued if media => r.counters.frames += 1,
        Push::Dropped if media => r.counters.dropped += 1,
        Push::Overflow => r.counters.overflows += 1,
        _ => {}
    }
    result
}

impl<P: Send + Sync + 'static> State<P> {
    fn track_mut(&mut self, stream: &str, track: &str) -> Result<&mut TrackSlot<P>, HubError> {
        let s = self
            .streams
            .get_mut(stream)
            .ok_or_else(|| HubError::UnknownStream(stream.to_owned()))?;
        s.tracks
            .iter_mut()
            .find(|t| t.info.track == track)
            .ok_or_else(|| HubError::UnknownTrack {
                stream: stream.to_owned(),
                track: track.to_owned(),
            })
    }

    fn watchers_of(&self, stream: &str) -> Vec<ReceiverId> {
        self.watchers
            .get(stream)
            .map(|w| w.iter().copied().collect())
            .unwrap_or_default()
    }

    fn push_control(&mut self, id: ReceiverId, packet: &SharedEvent<P>) {
        if let Some(r) = self.receivers.get_mut(&id) {
            push_counted(r, packet, Class::Control);
        }
    }

    /// Registers the watch; returns adapter work when this is the stream's first local watcher.
    fn start_watch(
        &mut self,
        id: ReceiverId,
        stream: &str,
        tracks: Option<BTreeSet<String>>,
    ) -> Option<Propagate> {
        if let Some(r) = self.receivers.get_mut(&id) {
            r.watches.insert(
                stream.to_owned(),
                Watch {
                    tracks,
                    waiting_key: HashSet::new(),
                },
            );
        }
        let set = self.watchers.entry(stream.to_owned()).or_default();
        let first = set.is_empty();
        set.insert(id);
        first.then(|| Propagate::Watched(stream.to_owned()))
    }

    /// Unregisters the watch; returns adapter work when it was the stream's last local watcher.
    fn stop_watch(&mut self, id: ReceiverId, stream: &str) -> Option<Propagate> {
        let set = self.watchers.get_mut(stream)?;
        if !set.remove(&id) || !set.is_empty() {
            return None;
        }
        self.watchers.remove(stream);
        Some(Propagate::Unwatched(stream.to_owned()))
    }

    /// The late-joiner treatment: announce, status per wanted track, then each video track's cached
    /// GOP, keyframe first. A track with no complete GOP cached waits for its next keyframe.
    fn attach(&mut self, id: ReceiverId, stream: &str) {
        let (Some(s), Some(r)) = (self.streams.get(stream), self.receivers.get_mut(&id)) else {
            return;
        };
        let Some(w) = r.watches.get_mut(stream) else {
            return;
        };
        let wanted: Vec<&TrackSlot<P>> =
            s.tracks.iter().filter(|t| w.wants(&t.info.track)).collect();
        let mut out = vec![(s.announce_packet.clone(), Class::Control)];
        out.extend(
            wanted
                .iter()
                .map(|t| (t.status_packet.clone(), Class::Control)),
        );
        w.waiting_key.clear();
        for t in wanted.iter().filter(|t| t.info.kind() == TrackKind::Video) {
            let (frames, complete) = t.cache.snapshot();
            if frames.is_empty() || !complete {
                w.waiting_key.insert(t.info.track.clone());
            }
            for (i, (p, _)) in frames.into_iter().enumerate() {
                let class = Class::Video {
                    track: t.key.clone(),
                    key: i == 0,
                };
                out.push((p, class));
            }
        }
        for (p, class) in out {
            push_counted(r, &p, class);
        }
    }

    /// A changed announce for a receiver already watching: the announce, then the `status` of each
    /// restarted (new or changed) track it wants — a track that comes up is a state change like
    /// any other — and those tracks wait for their next keyframe.
    fn reannounce(&mut self, id: ReceiverId, stream: &str, restarted: &[String]) {
        let (Some(s), Some(r)) = (self.streams.get(stream), self.receivers.get_mut(&id)) else {
            return;
        };
        let Some(w) = r.watches.get_mut(stream) else {
            return;
        };
        let wanted: Vec<&TrackSlot<P>> = s
            .tracks
            .iter()
            .filter(|t| restarted.contains(&t.info.track) && w.wants(&t.info.track))
            .collect();
        for t in &wanted {
            w.waiting_key.insert(t.info.track.clone());
        }
        push_counted(r, &s.announce_packet, Class::Control);
        for t in wanted {
            push_counted(r, &t.status_packet, Class::Control);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::contract::Codec;
    use crate::hub::InProcess;
    use crate::queue::OutQueue;
    use std::sync::atomic::{AtomicUsize, Ordering};

    /// A receiver whose queue is the real [`OutQueue`], drained by the test.
    struct QueueSink(Mutex<OutQueue<SharedEvent<usize>>>);

    impl QueueSink {
        fn new(items: usize, bytes: usize) -> Arc<Self> {
            Arc::new(QueueSink(Mutex::new(OutQueue::new(items, bytes))))
        }
        fn drain(&self) -> Vec<SharedEvent<usize>> {
            let mut q = self.0.lock().unwrap();
            std::iter::from_fn(|| q.pop()).collect()
        }
        fn bytes(&self) -> usize {
            self.0.lock().unwrap().bytes()
        }
    }

    impl Sink<usize> for QueueSink {
        fn offer(&self, packet: &SharedEvent<usize>, class: Class, bytes: usize) -> Push {
            self.0.lock().unwrap().push(packet.clone(), class, bytes)
        }
    }

    #[derive(Default)]
    struct Recorder(Mutex<Vec<String>>);

    impl Adapter for Recorder {
        fn announced(&self, a: &Announce) {
            self.0
                .lock()
                .unwrap()
                .push(format!("announced {}", a.stream));
        }
        fn withdrawn(&self, s: &str) {
            self.0.lock().unwrap().push(format!("withdrawn {s}"));
        }
        fn status(&self, s: &Status) {
            self.0
                .lock()
                .unwrap()
                .push(format!("status {}/{}", s.stream, s.track));
        }
        fn frame(&self, m: &MediaMeta, _: &Bytes) {
            self.0
                .lock()
                .unwrap()
                .push(format!("frame {}/{}#{}", m.stream, m.track, m.seq));
        }
        fn watched(&self, s: &str) {
            self.0.lock().unwrap().push(format!("watched {s}"));
        }
        fn unwatched(&self, s: &str) {
            self.0.lock().unwrap().push(format!("unwatched {s}"));
        }
    }

    /// A hub whose wire form is the encode count: proves each event is encoded exactly once.
    fn hub_with(adapter: Arc<dyn Adapter>, limits: CacheLimits) -> (Hub<usize>, Arc<AtomicUsize>) {
        let encoded = Arc::new(AtomicUsize::new(0));
        let e = encoded.clone();
        let hub = Hub::new(
            move |_: &ContractEvent| e.fetch_add(1, Ordering::SeqCst),
            adapter,
            limits,
        );
        (hub, encoded)
    }

    fn hub() -> Hub<usize> {
        hub_with(Arc::new(InProcess), CacheLimits::default()).0
    }

    fn cam(stream: &str) -> Announce {
        crate::contract::cam_announce(stream)
    }

    fn frame(stream: &str, track: &str, pts: u64, key: bool, len: usize) -> MediaFrame {
        let codec = if track == "video" {
            Codec::H264
        } else {
            Codec::Opus
        };
        MediaFrame {
            stream: stream.into(),
            track: track.into(),
            codec,
            pts,
            duration: 0,
            key,
            t: pts,
            data: Bytes::from(vec![pts as u8; len]),
        }
    }

    /// (event name, track, pts, key) of each packet, JSON parsed back.
    fn summary(packets: &[SharedEvent<usize>]) -> Vec<(String, String, u64, bool)> {
        packets
            .iter()
            .map(|p| {
                let v: serde_json::Value = serde_json::from_str(&p.event.json).unwrap();
                (
                    p.event.name.to_string(),
                    v["track"].as_str().unwrap_or("").to_string(),
                    v["pts"].as_u64().unwrap_or(0),
                    v["key"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    fn media_pts(packets: &[SharedEvent<usize>], track: &str) -> Vec<u64> {
        summary(packets)
            .into_iter()
            .filter(|(n, t, _, _)| n == "media" && t == track)
            .map(|(_, _, pts, _)| pts)
            .collect()
    }

    #[test]
    fn a_late_joiner_gets_announce_status_then_the_cached_gop_keyframe_first() {
        let hub = hub();
        hub.announce(cam("cam0")).unwrap();
        hub.publish(frame("cam0", "video", 0, true, 100)).unwrap();
        hub.publish(frame("cam0", "audio", 5, true, 10)).unwrap();
        hub.publish(frame("cam0", "video", 33, false, 20)).unwrap();
        hub.publish(frame("cam0", "video", 66, false, 20)).unwrap();
        let sink = QueueSink::new(100, 1 << 20);
        let id = hub.add_receiver(sink.clone(), false);
        let ack = hub.watch(id, "cam0", None).unwrap();
        assert_eq!(*ack, cam("cam0"));
        hub.publish(frame("cam0", "video", 99, false, 20)).unwrap();
        let got = summary(&sink.drain());
        let names: Vec<&str> = got.iter().map(|g| g.0.as_str()).collect();
        assert_eq!(names[..3], ["announce", "status", "status"]);
        assert_eq!(got[3], ("media".into(), "video".into(), 0, true));
        let video: Vec<u64> = got[3..].iter().map(|g| g.2).collect();
        assert_eq!(video, vec![0, 33, 66, 99]);
    }

    #[test]
    fn a_watcher_before_any_keyframe_waits_for_one() {
        let hub = hub();
        hub.announce(cam("cam0")).unwrap();
        let sink = QueueSink::new(100, 1 << 20);
        let id = hub.add_receiver(sink.clone(), false);
        hub.watch(id, "cam0", None).unwrap();
        hub.publish(frame("cam0", "video", 1, false, 10)).unwrap();
        hub.publish(frame("cam0", "video", 2, true, 10)).unwrap();
        hub.publish(frame("cam0", "video", 3, false, 10)).unwrap();
        assert_eq!(media_pts(&sink.drain(), "video"), vec![2, 3]);
    }

    #[test]
    fn each_event_is_encoded_once_and_shared_by_all_receivers() {
        let (hub, encoded) = hub_with(Arc::new(InProcess), CacheLimits::default());
        hub.announce(cam("cam0")).unwrap();
        let sinks: Vec<_> = (0..20).map(|_| QueueSink::new(100, 1 << 20)).collect();
        for s in &sinks {
            let id = hub.add_receiver(s.clone(), false);
            hub.watch(id, "cam0", None).unwrap();
        }
        let before = encoded.load(Ordering::SeqCst);
        for i in 0..10 {
            hub.publish(frame("cam0", "video", i, i == 0, 1000))
                .unwrap();
        }
        assert_eq!(encoded.load(Ordering::SeqCst) - before, 10);
        let first: Vec<_> = sinks.iter().map(|s| s.drain()).collect();
        for got in &first[1..] {
            let (a, b) = (&first[0][3..], &got[3..]);
            assert_eq!(a.len(), 10);
            assert!(a.iter().zip(b).all(|(x, y)| Arc::ptr_eq(x, y)));
        }
    }

    #[test]
    fn a_slow_receiver_drops_to_the_next_keyframe_and_nobody_else_notices() {
        let hub = hub();
        hub.announce(cam("cam0")).unwrap();
        let fast: Vec<_> = (0..19).map(|_| QueueSink::new(64, 256 << 10)).collect();
        let slow = QueueSink::new(64, 256 << 10);
        let mut ids = Vec::new();
        for s in fast.iter().chain(std::iter::once(&slow)) {
            let id = hub.add_receiver(s.clone(), false);
            hub.watch(id, "cam0", Some(vec!["video".into()])).unwrap();
            ids.push(id);
            s.drain();
        }
        let mut fast_got = vec![Vec::new(); fast.len()];
        // 10 GOPs of 30 frames (keyframe 8 KiB, deltas 2 KiB); the fast ones read after each frame.
        for i in 0..300u64 {
            let key = i % 30 == 0;
            hub.publish(frame(
                "cam0",
                "video",
                i,
                key,
                if key { 8192 } else { 2048 },
            ))
            .unwrap();
            for (s, got) in fast.iter().zip(&mut fast_got) {
                got.extend(media_pts(&s.drain(), "video"));
            }
            assert!(slow.bytes() <= 256 << 10);
        }
        let everything: Vec<u64> = (0..300).collect();
        for got in &fast_got {
            assert_eq!(*got, everything);
        }
        for id in &ids[..19] {
            assert_eq!(hub.receiver_counters(*id).unwrap().dropped, 0);
        }
        let slow_counters = hub.receiver_counters(ids[19]).unwrap();
        assert!(slow_counters.dropped > 0);
        // What the slow one still has queued starts at a keyframe and is one unbroken run.
        let got = media_pts(&slow.drain(), "video");
        assert!(!got.is_empty());
        assert_eq!(
            got[0] % 30,
            0,
            "slow receiver resumes at a keyframe: {got:?}"
        );
        assert!(got.windows(2).all(|w| w[1] == w[0] + 1));
        // Once it reads again it gets everything from the next keyframe on.
        for i in 300..330u64 {
            hub.publish(frame("cam0", "video", i, i % 30 == 0, 2048))
                .unwrap();
        }
        assert_eq!(
            media_pts(&slow.drain(), "video"),
            (300..330).collect::<Vec<_>>()
        );
        let snap = hub.snapshot();
        let v = &snap.streams[0].tracks[0];
        assert_eq!(v.frames_in, 330);
        assert_eq!(v.dropped, slow_counters.dropped);
        assert!(v.cache_bytes <= 8192 + 29 * 2048 + 29 * 100);
    }

    #[test]
    fn the_cache_stays_bounded_and_truncated_gops_make_late_joiners_wait_for_a_keyframe() {
        let limits = CacheLimits {
            max_frames: 1000,
            max_bytes: 64 << 10,
        };
        let (hub, _) = hub_with(Arc::new(InProcess), limits);
        hub.announce(cam("cam0")).unwrap();
        hub.publish(frame("cam0", "video", 0, true, 16 << 10))
            .unwrap();
        for i in 1..200 {
            hub.publish(frame("cam0", "video", i, false, 4 << 10))
                .unwrap();
            assert!(hub.snapshot().streams[0].tracks[0].cache_bytes <= 64 << 10);
        }
        let sink = QueueSink::new(1000, 8 << 20);
        let id = hub.add_receiver(sink.clone(), false);
        hub.watch(id, "cam0", None).unwrap();
        hub.publish(frame("cam0", "video", 200, false, 10)).unwrap();
        hub.publish(frame("cam0", "video", 201, true, 10)).unwrap();
        // The keyframe at once (a correct still picture), then nothing until the next keyframe.
        assert_eq!(media_pts(&sink.drain(), "video"), vec![0, 201]);
    }

    #[test]
    fn seq_counts_per_track_and_remote_frames_keep_theirs() {
        let hub = hub();
        hub.announce(cam("cam0")).unwrap();
        assert_eq!(
            hub.publish(frame("cam0", "video", 0, true, 1)).unwrap().seq,
            0
        );
        assert_eq!(
            hub.publish(frame("cam0", "audio", 0, true, 1)).unwrap().seq,
            0
        );
        assert_eq!(
            hub.publish(frame("cam0", "video", 1, false, 1))
                .unwrap()
                .seq,
            1
        );
        let sink = QueueSink::new(100, 1 << 20);
        let id = hub.add_receiver(sink.clone(), false);
        hub.watch(id, "cam0", None).unwrap();
        sink.drain();
        let meta = MediaMeta {
            stream: "cam0".into(),
            track: "video".into(),
            seq: 41,
            pts: 2,
            key: false,
            t: 2,
        };
        hub.apply_remote(Remote::Frame(meta, Bytes::from_static(b"x")))
            .unwrap();
        let got = sink.drain();
        let v: serde_json::Value = serde_json::from_str(&got[0].event.json).unwrap();
        assert_eq!(v["seq"], 41);
        assert_eq!(
            hub.publish(frame("cam0", "video", 3, false, 1))
                .unwrap()
                .seq,
            42
        );
    }

    #[test]
    fn unknown_streams_tracks_and_duplicate_tracks_are_refused() {
        let hub = hub();
        let sink = QueueSink::new(10, 1000);
        let id = hub.add_receiver(sink, false);
        assert_eq!(
            hub.watch(id, "nope", None).unwrap_err(),
            HubError::UnknownStream("nope".into())
        );
        assert!(hub.publish(frame("nope", "video", 0, true, 1)).is_err());
        hub.announce(cam("cam0")).unwrap();
        assert!(matches!(
            hub.watch(id, "cam0", Some(vec!["zoom".into()])),
            Err(HubError::UnknownTrack { .. })
        ));
        assert!(matches!(
            hub.publish(frame("cam0", "zoom", 0, true, 1)),
            Err(HubError::UnknownTrack { .. })
        ));
        let mut dup = cam("cam1");
        dup.tracks.push(dup.tracks[0].clone());
        assert!(matches!(
            hub.announce(dup),
            Err(HubError::InvalidAnnounce(_))
        ));
    }

    #[test]
    fn track_filter_unwatch_and_adapter_notifications() {
        let rec = Arc::new(Recorder::default());
        let (hub, _) = hub_with(rec.clone(), CacheLimits::default());
        hub.announce(cam("cam0")).unwrap();
        let a = QueueSink::new(100, 1 << 20);
        let b = QueueSink::new(100, 1 << 20);
        let ida = hub.add_receiver(a.clone(), false);
        let idb = hub.add_receiver(b.clone(), false);
        hub.watch(ida, "cam0", Some(vec!["audio".into()])).unwrap();
        hub.watch(idb, "cam0", None).unwrap();
        hub.publish(frame("cam0", "video", 0, true, 1)).unwrap();
        hub.publish(frame("cam0", "audio", 1, true, 1)).unwrap();
        let got_a = a.drain();
        assert_eq!(media_pts(&got_a, "video"), Vec::<u64>::new());
        assert_eq!(media_pts(&got_a, "audio"), vec![1]);
        hub.unwatch(ida, Some("cam0")).unwrap();
        hub.publish(frame("cam0", "audio", 2, true, 1)).unwrap();
        assert!(a.drain().is_empty());
        hub.remove_receiver(idb);
        assert_eq!(hub.snapshot().receivers, 1);
        assert_eq!(
            *rec.0.lock().unwrap(),
            [
                "announced cam0",
                "watched cam0",
                "frame cam0/video#0",
                "frame cam0/audio#0",
                "frame cam0/audio#1",
                "unwatched cam0",
            ]
        );
        // Remote events are applied but never echoed back to the adapter.
        hub.apply_remote(Remote::Announce(cam("cam9"))).unwrap();
        assert_eq!(rec.0.lock().unwrap().len(), 6);
        assert_eq!(hub.streams().len(), 2);
    }

    #[test]
    fn down_clears_the_cache_and_the_next_frame_brings_the_track_back_live() {
        let hub = hub();
        hub.announce(cam("cam0")).unwrap();
        hub.publish(frame("cam0", "video", 0, true, 10)).unwrap();
        let sink = QueueSink::new(100, 1 << 20);
        let id = hub.add_receiver(sink.clone(), false);
        hub.watch(id, "cam0", None).unwrap();
        sink.drain();
        hub.status(video_status(TrackState::Down, "camera unplugged"))
            .unwrap();
        let snap = hub.snapshot();
        assert_eq!(snap.streams[0].tracks[0].state, TrackState::Down);
        assert_eq!(snap.streams[0].tracks[0].cache_bytes, 0);
        hub.publish(frame("cam0", "video", 1, false, 10)).unwrap();
        hub.publish(frame("cam0", "video", 2, true, 10)).unwrap();
        let got = sink.drain();
        let s = summary(&got);
        assert_eq!(s[0].0, "status");
        assert!(got[0].event.json.contains("camera unplugged"));
        // The stray delta is not delivered; the first frame back announces the track live.
        assert_eq!(s[1].0, "status");
        assert!(got[1].event.json.contains("\"live\""));
        assert_eq!(media_pts(&got, "video"), vec![2]);
    }

    #[test]
    fn relay_receivers_follow_every_stream_and_resync_after_a_reconnect() {
        let hub = hub();
        hub.announce(cam("cam0")).unwrap();
        hub.publish(frame("cam0", "video", 0, true, 10)).unwrap();
        let relay = QueueSink::new(100, 1 << 20);
        let id = hub.add_receiver(relay.clone(), true);
        let s = summary(&relay.drain());
        assert_eq!(s[0].0, "announce");
        assert_eq!(s[3], ("media".into(), "video".into(), 0, true));
        hub.announce(cam("cam1")).unwrap();
        let got = relay.drain();
        assert_eq!(got[0].event.name, "announce");
        assert!(got[0].event.json.contains("cam1"));
        hub.publish(frame("cam1", "audio", 7, true, 10)).unwrap();
        assert_eq!(media_pts(&relay.drain(), "audio"), vec![7]);
        hub.resync(id).unwrap();
        let names: Vec<String> = summary(&relay.drain()).into_iter().map(|s| s.0).collect();
        assert_eq!(names.iter().filter(|n| *n == "announce").count(), 2);
    }

    /// A `status` of cam0's video track.
    fn video_status(state: TrackState, reason: &str) -> Status {
        Status {
            stream: "cam0".into(),
            track: "video".into(),
            state,
            reason: reason.into(),
        }
    }

    /// (track, state) of the `status` events among `packets`.
    fn statuses(packets: &[SharedEvent<usize>]) -> Vec<(String, String)> {
        packets
            .iter()
            .filter(|p| p.event.name == "status")
            .map(|p| {
                let v: serde_json::Value = serde_json::from_str(&p.event.json).unwrap();
                (
                    v["track"].as_str().unwrap().into(),
                    v["state"].as_str().unwrap().into(),
                )
            })
            .collect()
    }

    /// A track that comes up after a viewer and a relay client are attached — audio first, video
    /// once its SPS/PPS are known — reaches both as `announce` *and* `status` live, the same as
    /// when they attach afterwards.
    #[test]
    fn a_track_that_comes_up_later_is_sent_as_status_live_to_everyone_attached() {
        let hub = hub();
        let mut audio_only = cam("cam0");
        audio_only.tracks.remove(0);
        hub.announce(audio_only).unwrap();
        let viewer = QueueSink::new(100, 1 << 20);
        let vid = hub.add_receiver(viewer.clone(), false);
        hub.watch(vid, "cam0", None).unwrap();
        let relay = QueueSink::new(100, 1 << 20);
        hub.add_receiver(relay.clone(), true);
        for sink in [&viewer, &relay] {
            assert_eq!(statuses(&sink.drain()), [("audio".into(), "live".into())]);
        }
        hub.announce(cam("cam0")).unwrap();
        for sink in [&viewer, &relay] {
            let got = sink.drain();
            assert_eq!(got[0].event.name, "announce");
            assert_eq!(statuses(&got), [("video".into(), "live".into())]);
        }
        // The publisher's own `status` live for that track changes nothing: not sent twice.
        hub.status(video_status(TrackState::Live, "")).unwrap();
        assert!(viewer.drain().is_empty() && relay.drain().is_empty());
        // A track whose description changed while it was down comes back live.
        hub.status(video_status(TrackState::Down, "camera unplugged"))
            .unwrap();
        assert_eq!(statuses(&viewer.drain()), [("video".into(), "down".into())]);
        let mut wider = cam("cam0");
        wider.tracks[0].width = Some(640);
        hub.announce(wider).unwrap();
        assert_eq!(statuses(&viewer.drain()), [("video".into(), "live".into())]);
        assert_eq!(hub.snapshot().streams[0].tracks[0].state, TrackState::Live);
    }

    #[test]
    fn reannounce_restarts_only_changed_tracks_and_withdraw_keeps_watchers() {
        let hub = hub();
        hub.announce(cam("cam0")).unwrap();
        let sink = QueueSink::new(100, 1 << 20);
        let id = hub.add_receiver(sink.clone(), false);
        hub.watch(id, "cam0", None).unwrap();
        hub.publish(frame("cam0", "video", 0, true, 10)).unwrap();
        sink.drain();
        hub.announce(cam("cam0")).unwrap();
        assert!(sink.drain().is_empty(), "identical announce is a no-op");
        let mut bigger = cam("cam0");
        bigger.tracks[0].width = Some(640);
        hub.announce(bigger).unwrap();
        hub.publish(frame("cam0", "video", 1, false, 10)).unwrap();
        hub.publish(frame("cam0", "audio", 1, true, 10)).unwrap();
        hub.publish(frame("cam0", "video", 2, true, 10)).unwrap();
        let got = sink.drain();
        assert!(got[0].event.json.contains("640"));
        assert_eq!(media_pts(&got, "video"), vec![2]);
        assert_eq!(media_pts(&got, "audio"), vec![1]);
        hub.withdraw("cam0").unwrap();
        let down = summary(&sink.drain());
        assert_eq!(down.len(), 2);
        assert!(down.iter().all(|d| d.0 == "status"));
        assert!(hub.streams().is_empty());
        hub.announce(cam("cam0")).unwrap();
        hub.publish(frame("cam0", "video", 3, true, 10)).unwrap();
        let back = sink.drain();
        assert_eq!(back[0].event.name, "announce");
        assert_eq!(media_pts(&back, "video"), vec![3]);
    }
}
