//! The state of the link to the relay that the handles, the driver and the writers share, and the
//! connection state and counters it reports.

use super::error::ClientError;
use crate::engineio::client::DEFAULT_MAX_PAYLOAD;
use crate::engineio::packet::base64_len;
use crate::queue::{Class, OutQueue, Push};
use crate::socketio::{AckTable, Arg, Encoded, MAX_PENDING_ACKS};
use crate::sync::lock;
use bytes::Bytes;
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;
use tokio::sync::{Notify, oneshot};

/// The connection state, as shown on status pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ConnState {
    /// First connection attempt under way.
    Connecting,
    /// Every namespace is connected.
    Connected,
    /// Waiting for or making a new attempt after a failure.
    Reconnecting,
    /// Closed by the program or reconnection gave up.
    Closed,
}

/// A snapshot of the client's counters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ClientStats {
    /// Current state.
    pub state: ConnState,
    /// Socket.IO packets written to the relay.
    pub sent: u64,
    /// Their bytes (text part plus attachments).
    pub sent_bytes: u64,
    /// Media and volatile packets dropped: by the queue policy, because the link was down, or
    /// discarded at a disconnect (includes `too_large`).
    pub dropped: u64,
    /// Packets refused because they exceed the relay's `maxPayload`.
    pub too_large: u64,
    /// Reconnection attempts: every attempt after the first, successful or not (so a relay that
    /// refuses every attempt shows them counting).
    pub reconnects: u64,
    /// Successful connections, the first included.
    pub connects: u64,
    /// Failures in a row right now (a lost connection and each failed attempt since); 0 once
    /// connected.
    pub failed_attempts: u32,
    /// The last connection error, if any; kept after a recovery, with [`Self::last_error_at`].
    pub last_error: Option<String>,
    /// When [`Self::last_error`] happened.
    pub last_error_at: Option<SystemTime>,
    /// Packets waiting in the outgoing queue.
    pub queued: usize,
    /// Bytes waiting in the outgoing queue.
    pub queued_bytes: usize,
    /// Incoming events lost because the event receiver was not read fast enough.
    pub events_dropped: u64,
}

#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) sent: AtomicU64,
    pub(super) sent_bytes: AtomicU64,
    pub(super) dropped_offline: AtomicU64,
    pub(super) discarded: AtomicU64,
    pub(super) too_large: AtomicU64,
    pub(super) reconnects: AtomicU64,
    pub(super) connects: AtomicU64,
    pub(super) events_dropped: AtomicU64,
}

pub(super) struct Inner {
    pub(super) queue: OutQueue<Encoded>,
    pub(super) connected: HashSet<String>,
    pub(super) state: ConnState,
    pub(super) last_error: Option<(String, SystemTime)>,
    pub(super) failed_attempts: u32,
}

/// The state of the link to the relay, shared by the handles, the driver and the writers: the
/// outgoing queue, which namespaces are connected, counters, pending acks and the relay's limits.
pub(super) struct Link {
    pub(super) inner: Mutex<Inner>,
    /// Wakes the writer when the queue gets an item.
    pub(super) notify: Notify,
    pub(super) counters: Counters,
    /// Who waits for which ack from the relay.
    pub(super) acks: Mutex<AckTable<oneshot::Sender<Vec<Arg>>>>,
    /// The relay's limit for one Engine.IO message (from the handshake).
    pub(super) max_payload: AtomicU64,
    /// Whether the current transport is long-polling (binary is base64 there).
    pub(super) polling: AtomicBool,
}

impl std::fmt::Debug for Link {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Link").finish_non_exhaustive()
    }
}

fn encoded_len(e: &Encoded) -> usize {
    e.text.len() + e.attachments.iter().map(Bytes::len).sum::<usize>()
}

impl Link {
    pub(super) fn new(opts: &crate::config::QueueLimits) -> Link {
        Link {
            inner: Mutex::new(Inner {
                queue: OutQueue::new(opts.max_frames, opts.max_bytes.as_usize()),
                connected: HashSet::new(),
                state: ConnState::Connecting,
                last_error: None,
                failed_attempts: 0,
            }),
            notify: Notify::new(),
            counters: Counters::default(),
            acks: Mutex::new(AckTable::new(MAX_PENDING_ACKS)),
            max_payload: AtomicU64::new(DEFAULT_MAX_PAYLOAD),
            polling: AtomicBool::new(false),
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the queue inconsistent in a way that
        // matters more than stopping the stream; keep going with the data as it is.
        lock(&self.inner)
    }

    /// Checks an encoded packet against the relay's limit as it would travel on the current
    /// transport: each Engine.IO message (text part, each attachment) must fit in `maxPayload`.
    pub(super) fn check_size(&self, e: &Encoded) -> Result<(), ClientError> {
        let limit = usize::try_from(self.max_payload.load(Ordering::Relaxed)).unwrap_or(usize::MAX);
        let polling = self.polling.load(Ordering::Relaxed);
        let wire = |n: usize| if polling { 1 + base64_len(n) } else { n };
        let size = std::iter::once(1 + e.text.len())
            .chain(e.attachments.iter().map(|a| wire(a.len())))
            .max()
            .unwrap_or(0);
        if size > limit {
            Err(ClientError::TooLarge { size, limit })
        } else {
            Ok(())
        }
    }

    /// Queues a packet for a connected namespace.
    pub(super) fn enqueue(&self, ns: &str, e: Encoded, class: Class) -> Result<(), ClientError> {
        self.check_size(&e).inspect_err(|_| {
            self.counters.too_large.fetch_add(1, Ordering::Relaxed);
        })?;
        let bytes = encoded_len(&e);
        let mut inner = self.lock();
        if !inner.connected.contains(ns) {
            return Err(ClientError::NotConnected(ns.to_owned()));
        }
        let push = inner.queue.push(e, class, bytes);
        drop(inner);
        match push {
            Push::Queued => {
                self.notify.notify_one();
                Ok(())
            }
            Push::Dropped | Push::Overflow => Err(ClientError::QueueFull),
        }
    }

    /// Takes the next packet for the writer, counting it as sent.
    pub(super) fn pop(&self) -> Option<Encoded> {
        let e = self.lock().queue.pop()?;
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        self.counters
            .sent_bytes
            .fetch_add(encoded_len(&e) as u64, Ordering::Relaxed);
        Some(e)
    }

    /// After a disconnect: nothing queued survives (media would be stale, acks and emits belong
    /// to the old session), pending acks fail, every namespace is down.
    pub(super) fn reset_link(&self, state: ConnState, error: Option<String>) -> Vec<String> {
        let mut inner = self.lock();
        inner.queue.clear_media();
        let mut discarded = 0;
        while inner.queue.pop().is_some() {
            discarded += 1;
        }
        self.counters
            .discarded
            .fetch_add(discarded, Ordering::Relaxed);
        inner.state = state;
        if let Some(e) = error {
            inner.last_error = Some((e, SystemTime::now()));
        }
        let was: Vec<String> = inner.connected.drain().collect();
        drop(inner);
        lock(&self.acks).clear();
        was
    }

    pub(super) fn stats(&self) -> ClientStats {
        let inner = self.lock();
        let c = &self.counters;
        let too_large = c.too_large.load(Ordering::Relaxed);
        ClientStats {
            state: inner.state,
            sent: c.sent.load(Ordering::Relaxed),
            sent_bytes: c.sent_bytes.load(Ordering::Relaxed),
            dropped: inner.queue.stats().dropped()
                + c.dropped_offline.load(Ordering::Relaxed)
                + c.discarded.load(Ordering::Relaxed)
                + too_large,
            too_large,
            reconnects: c.reconnects.load(Ordering::Relaxed),
            connects: c.connects.load(Ordering::Relaxed),
            failed_attempts: inner.failed_attempts,
            last_error: inner.last_error.as_ref().map(|(e, _)| e.clone()),
            last_error_at: inner.last_error.as_ref().map(|(_, at)| *at),
            queued: inner.queue.len(),
            queued_bytes: inner.queue.bytes(),
            events_dropped: c.events_dropped.load(Ordering::Relaxed),
        }
    }
}
