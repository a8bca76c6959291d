//! The hub [`Adapter`] that joins relay nodes through the [Redis bus](super::redis_bus).
//!
//! What each node does:
//! - Streams whose publisher is connected *here* are local: their announces, statuses, withdrawals
//!   and frames are published on the bus (frames of video tracks also feed the shared GOP cache).
//! - Every node follows the control channel, so its hub lists every stream of the cluster; the
//!   stream list is also re-read from Redis periodically, so the streams of a node that died vanish
//!   when their TTL runs out.
//! - When the first local viewer watches a remote stream, the node subscribes to that stream's
//!   channel and fetches the shared GOP of each video track. Live frames that arrive while the GOP
//!   is fetched are held back, then only those newer than the GOP are applied, so a late joiner gets
//!   keyframe first and an unbroken sequence after it.

use super::envelope::{Record, RecordKind};
use super::redis_bus::{BusConfig, BusError, RedisBus};
use crate::contract::{Announce, MediaMeta, Status, TrackKind};
use crate::hub::{Adapter, Hub, Remote};
use crate::sync::lock;
use bytes::Bytes;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::mpsc;

/// Frames held back per stream while its GOP is fetched.
const MAX_HELD: usize = 512;

/// The Redis adapter: hand it to [`Hub::new`], then run its [`Feeder`] with the hub.
pub struct RedisAdapter {
    bus: RedisBus,
    local: Mutex<HashMap<String, Arc<Announce>>>,
    sync: mpsc::Sender<String>,
}

/// The task half of the adapter: applies what other nodes publish to the local hub.
pub struct Feeder {
    adapter: Arc<RedisAdapter>,
    records: mpsc::Receiver<Record>,
    sync: mpsc::Receiver<String>,
    ttl: Duration,
}

impl RedisAdapter {
    /// Starts the bus (Redis may come up later; the bus reconnects by itself).
    pub fn start(cfg: BusConfig) -> Result<(Arc<RedisAdapter>, Feeder), BusError> {
        let ttl = cfg.ttl;
        let (bus, records) = RedisBus::start(cfg)?;
        let (sync_tx, sync_rx) = mpsc::channel(256);
        let adapter = Arc::new(RedisAdapter {
            bus,
            local: Mutex::new(HashMap::new()),
            sync: sync_tx,
        });
        let feeder = Feeder {
            adapter: adapter.clone(),
            records,
            sync: sync_rx,
            ttl,
        };
        Ok((adapter, feeder))
    }

    /// The bus, for its counters.
    pub fn bus(&self) -> &RedisBus {
        &self.bus
    }

    fn local(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Announce>>> {
        lock(&self.local)
    }

    fn is_local(&self, stream: &str) -> bool {
        self.local().contains_key(stream)
    }

    fn record(&self, kind: RecordKind, stream: &str, meta: Bytes) -> Record {
        Record {
            stream: stream.into(),
            track: "".into(),
            kind,
            key: false,
            cache: false,
            node: "".into(),
            meta,
            data: Bytes::new(),
        }
    }
}

fn json<T: serde::Serialize>(v: &T) -> Bytes {
    Bytes::from(serde_json::to_vec(v).unwrap_or_default())
}

impl Adapter for RedisAdapter {
    fn announced(&self, announce: &Announce) {
        self.local()
            .insert(announce.stream.clone(), Arc::new(announce.clone()));
        self.bus
            .publish(self.record(RecordKind::Announce, &announce.stream, json(announce)));
    }

    fn withdrawn(&self, stream: &str) {
        self.local().remove(stream);
        self.bus
            .publish(self.record(RecordKind::Gone, stream, Bytes::new()));
    }

    fn status(&self, status: &Status) {
        self.bus
            .publish(self.record(RecordKind::Status, &status.stream, json(status)));
    }

    fn frame(&self, meta: &MediaMeta, data: &Bytes) {
        let video = self.local().get(&meta.stream).is_some_and(|a| {
            a.tracks
                .iter()
                .any(|t| t.track == meta.track && t.kind() == TrackKind::Video)
        });
        self.bus.publish(Record {
            track: meta.track.as_str().into(),
            key: meta.key,
            cache: video,
            data: data.clone(),
            ..self.record(RecordKind::Media, &meta.stream, json(meta))
        });
    }

    fn watched(&self, stream: &str) {
        self.bus.subscribe(stream);
        if !self.is_local(stream) && self.sync.try_send(stream.to_owned()).is_err() {
            tracing::warn!(
                stream,
                "late-joiner sync queue full; viewers wait for the next keyframe"
            );
        }
    }

    fn unwatched(&self, stream: &str) {
        self.bus.unsubscribe(stream);
    }
}

impl Feeder {
    /// Applies remote records to `hub` until the bus stops. Spawn it once per hub.
    pub async fn run<P: Send + Sync + 'static>(mut self, hub: Arc<Hub<P>>) {
        let (gop_tx, mut gop_rx) = mpsc::channel::<(String, Vec<Record>)>(64);
        let mut held: HashMap<String, Vec<Record>> = HashMap::new();
        let mut refresh = tokio::time::interval((self.ttl / 2).max(Duration::from_millis(200)));
        let mut remote: HashSet<String> = HashSet::new();
        loop {
            tokio::select! {
                record = self.records.recv() => {
                    let Some(record) = record else { return };
                    if record.kind == RecordKind::Media
                        && let Some(buf) = held.get_mut(&*record.stream)
                    {
                        if buf.len() < MAX_HELD {
                            buf.push(record);
                        }
                        continue;
                    }
                    self.apply(&hub, &record, &mut remote);
                }
                Some(stream) = self.sync.recv() => {
                    if held.contains_key(&stream) {
                        continue;
                    }
                    held.insert(stream.clone(), Vec::new());
                    let video: Vec<String> = hub
                        .streams()
                        .iter()
                        .filter(|a| a.stream == stream)
                        .flat_map(|a| a.tracks.iter())
                        .filter(|t| t.kind() == TrackKind::Video)
                        .map(|t| t.track.clone())
                        .collect();
                    let bus = self.adapter.bus.clone();
                    let tx = gop_tx.clone();
                    tokio::spawn(async move {
                        let mut gop = Vec::new();
                        for track in video {
                            match bus.cached_gop(&stream, &track).await {
                                Ok(records) => gop.extend(records),
                                Err(e) => tracing::warn!(stream, track, error = %e, "no shared GOP"),
                            }
                        }
                        let _ = tx.send((stream, gop)).await;
                    });
                }
                Some((stream, gop)) = gop_rx.recv() => {
                    let mut newest: HashMap<Arc<str>, u64> = HashMap::new();
                    for record in &gop {
                        if let Some(seq) = self.apply(&hub, record, &mut remote) {
                            newest.insert(record.track.clone(), seq);
                        }
                    }
                    for record in held.remove(&stream).unwrap_or_default() {
                        let stale = seq_of(&record)
                            .zip(newest.get(&record.track))
                            .is_some_and(|(seq, &gop_seq)| seq <= gop_seq);
                        if !stale {
                            self.apply(&hub, &record, &mut remote);
                        }
                    }
                }
                _ = refresh.tick() => self.refresh(&hub, &mut remote).await,
            }
        }
    }

    /// Applies one record; returns the seq of an applied media frame.
    fn apply<P: Send + Sync + 'static>(
        &self,
        hub: &Hub<P>,
        record: &Record,
        remote: &mut HashSet<String>,
    ) -> Option<u64> {
        if self.adapter.is_local(&record.stream) {
            return None;
        }
        let result = match record.kind {
            RecordKind::Announce => {
                let announce: Announce = serde_json::from_slice(&record.meta).ok()?;
                remote.insert(announce.stream.clone());
                hub.apply_remote(Remote::Announce(announce))
            }
            RecordKind::Gone => {
                remote.remove(&*record.stream);
                hub.apply_remote(Remote::Withdraw(record.stream.to_string()))
            }
            RecordKind::Status => {
                let status: Status = serde_json::from_slice(&record.meta).ok()?;
                hub.apply_remote(Remote::Status(status))
            }
            RecordKind::Media => {
                let meta: MediaMeta = serde_json::from_slice(&record.meta).ok()?;
                let seq = meta.seq;
                return hub
                    .apply_remote(Remote::Frame(meta, record.data.clone()))
                    .ok()
                    .map(|()| seq);
            }
        };
        if let Err(e) = result {
            tracing::debug!(stream = %record.stream, error = %e, "remote record not applied");
        }
        None
    }

    /// Re-reads the cluster's stream list: adds streams this node missed (it started late, or
    /// Redis restarted) and withdraws remote streams whose announce expired (their node died).
    async fn refresh<P: Send + Sync + 'static>(&self, hub: &Hub<P>, remote: &mut HashSet<String>) {
        let Ok(listed) = self.adapter.bus.streams().await else {
            return;
        };
        let mut alive = HashSet::new();
        for (id, meta) in listed {
            alive.insert(id.clone());
            let known = hub.streams().iter().any(|a| a.stream == id);
            if !known && !self.adapter.is_local(&id) {
                let record = Record {
                    meta,
                    ..self.adapter.record(RecordKind::Announce, &id, Bytes::new())
                };
                self.apply(hub, &record, remote);
            }
        }
        let dead: Vec<String> = remote.difference(&alive).cloned().collect();
        for id in dead {
            remote.remove(&id);
            if let Err(e) = hub.apply_remote(Remote::Withdraw(id.clone())) {
                tracing::debug!(stream = id, error = %e, "withdraw of an expired stream");
            }
        }
    }
}

fn seq_of(record: &Record) -> Option<u64> {
    serde_json::from_slice::<MediaMeta>(&record.meta)
        .ok()
        .map(|m| m.seq)
}
