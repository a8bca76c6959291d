//! The Redis bus that makes several relay processes one relay.
//!
//! Why it looks like this:
//! - **One pub/sub channel per stream** (`{prefix}:s:{stream}`) for media: a node subscribes only
//!   to the streams its viewers watch, so it receives no other frames. Announces, statuses and
//!   withdrawals are small and go to one control channel (`{prefix}:ctl`) that every node follows,
//!   so every node can list every stream.
//! - **Records are opaque envelopes** (see [`Record`] and [`super::envelope`]): the bus never
//!   parses JSON or media; a frame is decoded by every receiving node once.
//! - **Each frame crosses the wire once, many frames per round trip**: a cached video frame is one
//!   `EVALSHA` of a small Lua script that appends it to the shared GOP and publishes it (other
//!   records are a plain `PUBLISH`), and whatever is queued goes out as one pipeline (bounded in
//!   records and bytes), in order. A script cache Redis lost (restart, `SCRIPT FLUSH`) is loaded
//!   again on NOSCRIPT.
//! - **Shared state with TTLs**: each stream's announce lives at `{prefix}:a:{stream}` and the
//!   current GOP of each cached track (the last keyframe and the frames since, which a late joiner
//!   needs to decode without waiting) in the list `{prefix}:g:{stream}:{track}`, both expiring
//!   unless the publishing node refreshes them, so a node that dies takes only its own streams
//!   with it.
//! - **Never blocks the caller**: publishing goes through a bounded channel (full → dropped and
//!   counted); received records go out through a bounded channel (full → dropped and counted).
//! - **Survives Redis restarts**: the subscriber reconnects with backoff and resubscribes; commands
//!   go through redis' `ConnectionManager`, which reconnects by itself.

use super::envelope::{Envelope, Record, RecordKind, decode, envelope_len};
use crate::sync::lock;
use bytes::Bytes;
use futures_util::StreamExt;
use redis::AsyncCommands;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};
use tokio::sync::{mpsc, watch};

/// Errors of the bus.
#[derive(Debug, thiserror::Error)]
pub enum BusError {
    /// The adapter URL cannot be used.
    #[error("invalid redis adapter url {url:?}: {source}")]
    Url {
        /// The configured URL.
        url: String,
        /// Why redis refused it.
        #[source]
        source: redis::RedisError,
    },
    /// A command failed.
    #[error("redis: {0}")]
    Redis(#[from] redis::RedisError),
    /// No connection to Redis yet (it may come up later; the bus retries).
    #[error("redis is not reachable yet")]
    NotConnected,
}

/// Settings of the bus.
#[derive(Debug, Clone)]
pub struct BusConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// Key and channel prefix, so several deployments can share one Redis.
    pub prefix: String,
    /// This node's id (unique per process).
    pub node: String,
    /// How long announces and cached keyframes outlive their last refresh.
    pub ttl: Duration,
    /// Bound of both the outgoing and the incoming record queues.
    pub queue: usize,
}

/// Counters for status pages and metrics.
#[derive(Debug, Default)]
pub struct BusStats {
    /// Records Redis accepted.
    pub published: AtomicU64,
    /// Records dropped on the way out (queue full, Redis down or refusing).
    pub publish_dropped: AtomicU64,
    /// Records received from other nodes.
    pub received: AtomicU64,
    /// Received records dropped because the hub did not take them fast enough.
    pub receive_dropped: AtomicU64,
    /// Reconnection attempts of the subscriber, successful or not.
    pub reconnects: AtomicU64,
    /// Failures in a row of the subscriber right now (0 while connected).
    pub failed_attempts: AtomicU32,
    /// The subscriber's last error and when it happened (kept after recovery).
    pub last_error: Mutex<Option<(String, SystemTime)>>,
    /// The subscriber is connected and subscribed.
    pub connected: AtomicBool,
}

impl BusStats {
    /// Records a failure of the subscriber (the error first: whoever sees it disconnected sees why).
    fn failed(&self, error: String) {
        *lock(&self.last_error) = Some((error, SystemTime::now()));
        self.failed_attempts.fetch_add(1, Ordering::Relaxed);
        self.connected.store(false, Ordering::Relaxed);
    }
}

enum Cmd {
    Publish(Record),
}

/// Handle to the bus; cheap to clone.
#[derive(Clone)]
pub struct RedisBus {
    inner: Arc<Inner>,
}

struct Inner {
    cfg: BusConfig,
    client: redis::Client,
    out: mpsc::Sender<Cmd>,
    wanted: watch::Sender<HashSet<Arc<str>>>,
    announced: Mutex<BTreeMap<Arc<str>, Bytes>>,
    conn: tokio::sync::Mutex<Option<redis::aio::ConnectionManager>>,
    stats: BusStats,
    tasks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl RedisBus {
    /// Starts the bus tasks on the current tokio runtime. Redis need not be up yet: the tasks
    /// connect (and reconnect) in the background. Returns the handle and the incoming records.
    pub fn start(cfg: BusConfig) -> Result<(RedisBus, mpsc::Receiver<Record>), BusError> {
        let client = redis::Client::open(cfg.url.as_str()).map_err(|source| BusError::Url {
            url: cfg.url.clone(),
            source,
        })?;
        let (out_tx, out_rx) = mpsc::channel(cfg.queue.max(1));
        let (in_tx, in_rx) = mpsc::channel(cfg.queue.max(1));
        let (wanted, wanted_rx) = watch::channel(HashSet::new());
        let inner = Arc::new(Inner {
            cfg,
            client,
            out: out_tx,
            wanted,
            announced: Mutex::new(BTreeMap::new()),
            conn: tokio::sync::Mutex::new(None),
            stats: BusStats::default(),
            tasks: Mutex::new(Vec::new()),
        });
        let tasks = vec![
            tokio::spawn(
                Publisher {
                    inner: inner.clone(),
                    script: None,
                    cached: HashMap::new(),
                }
                .run(out_rx),
            )
            .abort_handle(),
            tokio::spawn(subscriber(inner.clone(), wanted_rx, in_tx)).abort_handle(),
            tokio::spawn(keepalive(Arc::downgrade(&inner))).abort_handle(),
        ];
        *lock(&inner.tasks) = tasks;
        Ok((RedisBus { inner }, in_rx))
    }

    /// Publishes a record to every node subscribed to its stream, without waiting. A keyframe is
    /// also stored as its track's late-joiner cache. Returns false when the record was dropped
    /// because the outgoing queue is full.
    pub fn publish(&self, mut record: Record) -> bool {
        record.node = self.inner.cfg.node.as_str().into();
        if record.kind == RecordKind::Announce {
            self.lock_announced()
                .insert(record.stream.clone(), record.meta.clone());
        } else if record.kind == RecordKind::Gone {
            self.lock_announced().remove(&record.stream);
        }
        let ok = self.inner.out.try_send(Cmd::Publish(record)).is_ok();
        if !ok {
            self.inner
                .stats
                .publish_dropped
                .fetch_add(1, Ordering::Relaxed);
        }
        ok
    }

    /// Starts receiving the records of `stream`.
    pub fn subscribe(&self, stream: &str) {
        self.inner
            .wanted
            .send_if_modified(|w| w.insert(stream.into()));
    }

    /// Stops receiving the records of `stream`.
    pub fn unsubscribe(&self, stream: &str) {
        self.inner.wanted.send_if_modified(|w| w.remove(stream));
    }

    /// The current GOP of a track from the shared late-joiner cache, keyframe first (empty when
    /// nothing is cached).
    pub async fn cached_gop(&self, stream: &str, track: &str) -> Result<Vec<Record>, BusError> {
        let key = gop_key(&self.inner.cfg.prefix, stream, track);
        let raw: Vec<Vec<u8>> = self
            .with_conn(|mut c| async move { c.lrange(key, 0, -1).await })
            .await?;
        Ok(raw
            .into_iter()
            .filter_map(|r| decode(Bytes::from(r)))
            .collect())
    }

    /// Every stream announced by any live node: (stream id, announce JSON).
    pub async fn streams(&self) -> Result<Vec<(String, Bytes)>, BusError> {
        let prefix = self.inner.cfg.prefix.clone();
        let set = format!("{prefix}:streams");
        let ids: Vec<String> = self
            .with_conn(|mut c| {
                let set = set.clone();
                async move { c.smembers(set).await }
            })
            .await?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = ids.iter().map(|id| format!("{prefix}:a:{id}")).collect();
        let values: Vec<Option<Vec<u8>>> = self
            .with_conn(|mut c| {
                let keys = keys.clone();
                async move { redis::cmd("MGET").arg(keys).query_async(&mut c).await }
            })
            .await?;
        let mut live = Vec::new();
        let mut dead = Vec::new();
        for (id, value) in ids.into_iter().zip(values) {
            match value {
                Some(v) => live.push((id, Bytes::from(v))),
                None => dead.push(id),
            }
        }
        if !dead.is_empty() {
            let _: Result<(), BusError> = self
                .with_conn(|mut c| async move { c.srem(set, dead).await })
                .await;
        }
        Ok(live)
    }

    /// Stops the bus at once: nothing more is sent or received and this node's announces are no
    /// longer refreshed, so they expire as if the process had died. Publish `Gone` records first
    /// for a graceful exit.
    pub fn abort(&self) {
        for task in lock(&self.inner.tasks).drain(..) {
            task.abort();
        }
    }

    /// The bus counters.
    pub fn stats(&self) -> &BusStats {
        &self.inner.stats
    }

    fn lock_announced(&self) -> std::sync::MutexGuard<'_, BTreeMap<Arc<str>, Bytes>> {
        lock(&self.inner.announced)
    }

    async fn with_conn<T, F, Fut>(&self, f: F) -> Result<T, BusError>
    where
        F: FnOnce(redis::aio::ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let conn = connection(&self.inner)
            .await
            .ok_or(BusError::NotConnected)?;
        Ok(f(conn).await?)
    }
}

/// The shared command connection, created on first use (Redis may come up after us).
async fn connection(inner: &Inner) -> Option<redis::aio::ConnectionManager> {
    let mut guard = inner.conn.lock().await;
    if guard.is_none() {
        let cfg = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_max_delay(Duration::from_secs(2));
        match inner.client.get_connection_manager_with_config(cfg).await {
            Ok(c) => *guard = Some(c),
            Err(e) => {
                tracing::debug!(error = %e, "redis not reachable");
                return None;
            }
        }
    }
    guard.clone()
}

fn channel(prefix: &str, stream: &str) -> String {
    format!("{prefix}:s:{stream}")
}

fn control_channel(prefix: &str) -> String {
    format!("{prefix}:ctl")
}

fn gop_key(prefix: &str, stream: &str, track: &str) -> String {
    format!("{prefix}:g:{stream}:{track}")
}

/// Longest GOP kept in the shared cache; a longer one is dropped from the cache (no cache is
/// better than a cache that cannot be decoded).
const MAX_GOP_FRAMES: usize = 600;

/// Most records sent in one pipelined round trip to Redis.
const MAX_BATCH_RECORDS: usize = 64;

/// Most envelope bytes sent in one pipelined round trip (a single bigger record goes alone).
const MAX_BATCH_BYTES: usize = 1 << 20;

/// Publishes one cached video frame and keeps its track's shared GOP in the same call, so the
/// frame crosses the wire once. `KEYS[1]`: the GOP list; `ARGV`: channel, envelope, `1` for a
/// keyframe, TTL in ms, GOP cap. A keyframe replaces the list; another frame is appended only
/// to a list that exists (a keyframe started it) and is shorter than the cap; a list at the cap
/// is deleted. PUBLISH comes last, so a frame that failed here (e.g. WRONGTYPE) reached nobody.
const GOP_SCRIPT: &str = r"
local gop, payload = KEYS[1], ARGV[2]
if ARGV[3] == '1' then
  redis.call('DEL', gop)
  redis.call('RPUSH', gop, payload)
  redis.call('PEXPIRE', gop, ARGV[4])
else
  local n = redis.call('LLEN', gop)
  if n >= tonumber(ARGV[5]) then
    redis.call('DEL', gop)
  elseif n > 0 then
    redis.call('RPUSH', gop, payload)
    redis.call('PEXPIRE', gop, ARGV[4])
  end
end
return redis.call('PUBLISH', ARGV[1], payload)
";

/// A record on its way out.
struct Outgoing {
    record: Record,
    /// Length of its envelope.
    len: usize,
}

impl Outgoing {
    fn new(record: Record) -> Self {
        let len = envelope_len(&record);
        Outgoing { record, len }
    }

    /// Goes through [`GOP_SCRIPT`] rather than a plain PUBLISH.
    fn cached(&self) -> bool {
        self.record.kind == RecordKind::Media && self.record.cache
    }
}

/// Waits for the next record, then takes the records already queued behind it, in order, up to
/// [`MAX_BATCH_RECORDS`] and [`MAX_BATCH_BYTES`]. A record that would overflow the byte bound is
/// kept in `carry` and starts the next batch. Returns false once the bus is dropped and drained.
async fn next_batch(
    rx: &mut mpsc::Receiver<Cmd>,
    carry: &mut Option<Outgoing>,
    batch: &mut Vec<Outgoing>,
) -> bool {
    batch.clear();
    let first = match carry.take() {
        Some(o) => o,
        None => match rx.recv().await {
            Some(Cmd::Publish(r)) => Outgoing::new(r),
            None => return false,
        },
    };
    let mut bytes = first.len;
    batch.push(first);
    while batch.len() < MAX_BATCH_RECORDS {
        let Ok(Cmd::Publish(r)) = rx.try_recv() else {
            break;
        };
        let next = Outgoing::new(r);
        if bytes + next.len > MAX_BATCH_BYTES {
            *carry = Some(next);
            break;
        }
        bytes += next.len;
        batch.push(next);
    }
    true
}

/// The outgoing half of the bus: one pipelined round trip per batch of queued records.
struct Publisher {
    inner: Arc<Inner>,
    /// SHA1 of [`GOP_SCRIPT`] as Redis loaded it; `None` until loaded, and again after Redis
    /// answered NOSCRIPT (restart, `SCRIPT FLUSH`).
    script: Option<String>,
    /// Tracks with a shared GOP list, per local stream, so `Gone` can delete them.
    cached: HashMap<Arc<str>, HashSet<Arc<str>>>,
}

/// How one record of a round trip fared.
enum Outcome {
    Published,
    /// Redis had no [`GOP_SCRIPT`]: nothing of the record was executed; load and send again.
    NoScript,
    Failed,
}

impl Publisher {
    async fn run(mut self, mut rx: mpsc::Receiver<Cmd>) {
        let mut batch = Vec::with_capacity(MAX_BATCH_RECORDS);
        let mut carry = None;
        while next_batch(&mut rx, &mut carry, &mut batch).await {
            self.send(&batch).await;
        }
    }

    /// Sends a batch and counts each record as published or dropped. Records refused with
    /// NOSCRIPT are sent once more, in order, after loading the script. Only in that batch (right
    /// after Redis lost its scripts) can records that did not need the script (audio, statuses)
    /// overtake the video frames that did; if another node loaded the script while the pipeline
    /// ran, a later video frame can overtake an earlier refused one too.
    async fn send(&mut self, batch: &[Outgoing]) {
        let Some(mut conn) = connection(&self.inner).await else {
            self.count(0, batch.len());
            return;
        };
        let outcomes = self.round_trip(&mut conn, batch.iter()).await;
        let mut again = Vec::new();
        let mut published = 0;
        for (o, outcome) in batch.iter().zip(&outcomes) {
            match outcome {
                Outcome::Published => published += 1,
                Outcome::NoScript => again.push(o),
                Outcome::Failed => {}
            }
        }
        if !again.is_empty() {
            self.script = None;
            let outcomes = self.round_trip(&mut conn, again.into_iter()).await;
            published += outcomes
                .iter()
                .filter(|o| matches!(o, Outcome::Published))
                .count();
        }
        self.count(published, batch.len() - published);
    }

    fn count(&self, published: usize, dropped: usize) {
        let stats = &self.inner.stats;
        stats
            .published
            .fetch_add(published as u64, Ordering::Relaxed);
        stats
            .publish_dropped
            .fetch_add(dropped as u64, Ordering::Relaxed);
    }

    /// One pipeline for `records` (loading [`GOP_SCRIPT`] first when needed); one outcome per
    /// record, in order.
    async fn round_trip<'a>(
        &mut self,
        conn: &mut redis::aio::ConnectionManager,
        records: impl Iterator<Item = &'a Outgoing> + Clone,
    ) -> Vec<Outcome> {
        let n = records.clone().count();
        let failed = |e: redis::RedisError| {
            tracing::debug!(error = %e, records = n, "redis publish failed");
            (0..n).map(|_| Outcome::Failed).collect()
        };
        if self.script.is_none() && records.clone().any(Outgoing::cached) {
            match redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(GOP_SCRIPT)
                .query_async(conn)
                .await
            {
                Ok(sha) => self.script = Some(sha),
                Err(e) => return failed(e),
            }
        }
        let mut pipe = redis::pipe();
        pipe.ignore_errors();
        let sizes: Vec<usize> = records.map(|o| self.append(&mut pipe, o)).collect();
        let replies: Vec<redis::RedisResult<redis::Value>> = match pipe.query_async(conn).await {
            Ok(r) => r,
            Err(e) => return failed(e),
        };
        if replies.len() != sizes.iter().sum::<usize>() {
            return failed(redis::RedisError::from((
                redis::ErrorKind::Client,
                "pipeline reply count mismatch",
            )));
        }
        let mut replies = replies.into_iter();
        sizes
            .into_iter()
            .map(|size| {
                let mut outcome = Outcome::Published;
                for reply in replies.by_ref().take(size) {
                    if let (Outcome::Published, Err(e)) = (&outcome, reply) {
                        outcome = if e.kind()
                            == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript)
                        {
                            Outcome::NoScript
                        } else {
                            tracing::debug!(error = %e, "redis refused a record");
                            Outcome::Failed
                        };
                    }
                }
                outcome
            })
            .collect()
    }

    /// Adds the commands of one record to `pipe`; returns how many.
    fn append(&mut self, pipe: &mut redis::Pipeline, o: &Outgoing) -> usize {
        let prefix = &self.inner.cfg.prefix;
        let ttl_ms = self.inner.cfg.ttl.as_millis().max(1) as u64;
        let r = &o.record;
        let payload = Envelope(r);
        if o.cached() {
            self.cached
                .entry(r.stream.clone())
                .or_default()
                .insert(r.track.clone());
            pipe.cmd("EVALSHA")
                .arg(self.script.as_deref().unwrap_or_default())
                .arg(1)
                .arg(gop_key(prefix, &r.stream, &r.track))
                .arg(channel(prefix, &r.stream))
                .arg(payload)
                .arg(if r.key { "1" } else { "0" })
                .arg(ttl_ms)
                .arg(MAX_GOP_FRAMES);
            return 1;
        }
        match r.kind {
            RecordKind::Media => {
                pipe.cmd("PUBLISH")
                    .arg(channel(prefix, &r.stream))
                    .arg(payload);
                1
            }
            RecordKind::Status => {
                pipe.cmd("PUBLISH")
                    .arg(control_channel(prefix))
                    .arg(payload);
                1
            }
            RecordKind::Announce => {
                pipe.cmd("PUBLISH")
                    .arg(control_channel(prefix))
                    .arg(payload)
                    .pset_ex(format!("{prefix}:a:{}", r.stream), r.meta.as_ref(), ttl_ms)
                    .sadd(format!("{prefix}:streams"), r.stream.as_ref());
                3
            }
            RecordKind::Gone => {
                let gops: Vec<String> = self
                    .cached
                    .remove(&r.stream)
                    .unwrap_or_default()
                    .iter()
                    .map(|track| gop_key(prefix, &r.stream, track))
                    .collect();
                pipe.cmd("PUBLISH")
                    .arg(control_channel(prefix))
                    .arg(payload)
                    .del(format!("{prefix}:a:{}", r.stream))
                    .srem(format!("{prefix}:streams"), r.stream.as_ref());
                if gops.is_empty() {
                    return 3;
                }
                pipe.del(gops);
                4
            }
        }
    }
}

/// Refreshes the TTLs of this node's announces, and stops when the bus is dropped.
async fn keepalive(inner: std::sync::Weak<Inner>) {
    let period = match inner.upgrade() {
        Some(i) => (i.cfg.ttl / 3).max(Duration::from_millis(100)),
        None => return,
    };
    loop {
        tokio::time::sleep(period).await;
        let Some(inner) = inner.upgrade() else { return };
        let announced: Vec<(Arc<str>, Bytes)> = lock(&inner.announced)
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if announced.is_empty() {
            continue;
        }
        let Some(mut conn) = connection(&inner).await else {
            continue;
        };
        let prefix = &inner.cfg.prefix;
        let ttl_ms = inner.cfg.ttl.as_millis().max(1) as u64;
        let mut pipe = redis::pipe();
        for (stream, meta) in &announced {
            pipe.pset_ex(format!("{prefix}:a:{stream}"), meta.as_ref(), ttl_ms)
                .ignore();
            pipe.sadd(format!("{prefix}:streams"), stream.as_ref())
                .ignore();
        }
        if let Err(e) = pipe.query_async::<()>(&mut conn).await {
            tracing::debug!(error = %e, "redis keepalive failed");
        }
    }
}

async fn subscriber(
    inner: Arc<Inner>,
    mut wanted: watch::Receiver<HashSet<Arc<str>>>,
    out: mpsc::Sender<Record>,
) {
    let prefix = inner.cfg.prefix.clone();
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    loop {
        if out.is_closed() {
            return;
        }
        if !std::mem::take(&mut first) {
            inner.stats.reconnects.fetch_add(1, Ordering::Relaxed);
        }
        let pubsub = match inner.client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                tracing::debug!(error = %e, "redis pubsub connect failed");
                inner.stats.failed(e.to_string());
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let mut current: HashSet<Arc<str>> = HashSet::new();
        let mut failed = sink.subscribe(control_channel(&prefix)).await.is_err();
        let target = wanted.borrow_and_update().clone();
        for s in &target {
            if failed || sink.subscribe(channel(&prefix, s)).await.is_err() {
                failed = true;
                break;
            }
            current.insert(s.clone());
        }
        if !failed {
            if inner.stats.failed_attempts.swap(0, Ordering::Relaxed) > 0 {
                tracing::info!("redis bus reconnected");
            }
            inner.stats.connected.store(true, Ordering::Relaxed);
            backoff = Duration::from_millis(100);
        }
        while !failed {
            tokio::select! {
                changed = wanted.changed() => {
                    if changed.is_err() {
                        return;
                    }
                    let target = wanted.borrow_and_update().clone();
                    for s in target.difference(&current) {
                        failed |= sink.subscribe(channel(&prefix, s)).await.is_err();
                    }
                    for s in current.difference(&target) {
                        failed |= sink.unsubscribe(channel(&prefix, s)).await.is_err();
                    }
                    current = target;
                }
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let Some(record) = decode(Bytes::copy_from_slice(msg.get_payload_bytes())) else {
                        tracing::warn!(channel = msg.get_channel_name(), "malformed record on the redis bus");
                        continue;
                    };
                    if *record.node == *inner.cfg.node {
                        continue;
                    }
                    inner.stats.received.fetch_add(1, Ordering::Relaxed);
                    if out.try_send(record).is_err() {
                        if out.is_closed() {
                            return;
                        }
                        inner.stats.receive_dropped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
        }
        let why = if failed {
            "subscribing failed"
        } else {
            "connection lost"
        };
        inner.stats.failed(why.into());
        tracing::warn!("redis bus {why}; reconnecting");
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::relay::envelope::tests::record;

    async fn batches(sizes: &[usize]) -> Vec<Vec<usize>> {
        let (tx, mut rx) = mpsc::channel(sizes.len().max(1));
        for (i, &size) in sizes.iter().enumerate() {
            let r = Record {
                meta: Bytes::from(i.to_string()),
                data: Bytes::from(vec![0; size]),
                ..record()
            };
            assert!(tx.try_send(Cmd::Publish(r)).is_ok());
        }
        drop(tx);
        let (mut carry, mut batch, mut out) = (None, Vec::new(), Vec::new());
        let mut order = Vec::new();
        while next_batch(&mut rx, &mut carry, &mut batch).await {
            out.push(batch.iter().map(|o| o.record.data.len()).collect());
            order.extend(batch.iter().map(|o| o.record.meta.clone()));
        }
        let sent: Vec<Bytes> = (0..sizes.len())
            .map(|i| Bytes::from(i.to_string()))
            .collect();
        assert_eq!(order, sent, "every record once, in order");
        out
    }

    #[tokio::test]
    async fn queued_records_are_batched_within_both_bounds_in_order() {
        let counts: Vec<usize> = batches(&[10; 150]).await.iter().map(Vec::len).collect();
        assert_eq!(counts, [64, 64, 22]);

        const K: usize = 1024;
        assert_eq!(
            batches(&[400 * K, 400 * K, 400 * K, 10, 2000 * K, 10]).await,
            [
                vec![400 * K, 400 * K],
                vec![400 * K, 10],
                vec![2000 * K],
                vec![10]
            ],
            "at most 1 MiB per batch, except a single bigger record alone"
        );
    }
}
