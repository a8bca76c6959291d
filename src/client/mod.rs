//! The publisher client: one Socket.IO connection to a relay that survives everything.
//!
//! ```text
//! capture ──send_media()──▶ OutQueue (bounded, media-aware) ──▶ writer task ──▶ relay
//!                                ▲                                              │
//!  ClientHandle::emit*() ────────┘          driver task (sans-IO sessions) ◀── reader task
//!                                                  │
//!                                   ClientEvent receiver (connect, events, errors)
//! ```
//!
//! - [`Client::connect`] validates [`ClientOptions`], starts a driver task and returns at once a
//!   [`ClientHandle`] (cheap to clone) and a bounded receiver of [`ClientEvent`]s.
//! - The driver connects (WebSocket, or long-polling with optional upgrade), joins every
//!   namespace with its auth, and reconnects with backoff after any failure: a refused CONNECT
//!   (reported with the relay's message), a dropped socket, a handshake that never comes, a relay
//!   that stops pinging.
//! - Nothing ever blocks the caller: [`ClientHandle::send_media`] takes a short lock, pushes into
//!   the [`OutQueue`] (which drops by policy when full) and returns. While the link is down media is
//!   dropped, and on every disconnect queued media is discarded, so that a reconnect resumes at
//!   the next keyframe with nothing stale replayed.
//! - Frames larger than the relay's `maxPayload` are dropped and counted, never sent (the relay
//!   would close the connection, again and again).

mod driver;
pub mod options;
pub mod tls;
mod transport;

pub use options::{ClientOptions, Endpoint, NamespaceOptions, OptionsError};

use crate::engineio::client::DEFAULT_MAX_PAYLOAD;
use crate::engineio::packet::base64_len;
use crate::queue::{Class, OutQueue, Push};
use crate::socketio::{Arg, Encoded, Packet};
use crate::sync::lock;
use bytes::Bytes;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::{Notify, mpsc, oneshot};

/// Why the client could not connect or lost the connection (kept as the `last_error`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// The settings cannot work.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// TCP connect or the HTTP/WebSocket handshake failed.
    #[error("connect: {0}")]
    Connect(String),
    /// TLS failed (e.g. the certificate is not trusted).
    #[error("TLS: {0}")]
    Tls(String),
    /// Something did not happen in time.
    #[error("timeout: {0}")]
    Timeout(String),
    /// The relay refused a namespace (CONNECT_ERROR), with the relay's message.
    #[error("relay refused namespace {namespace}: {message}")]
    Refused {
        /// The namespace.
        namespace: String,
        /// The relay's message (`{"message": …}` or a plain string payload).
        message: String,
    },
    /// The connection dropped or failed mid-way.
    #[error("transport: {0}")]
    Transport(String),
    /// The relay sent something the protocol does not allow.
    #[error("protocol: {0}")]
    Protocol(String),
    /// The namespace is not connected right now.
    #[error("namespace {0} is not connected")]
    NotConnected(String),
    /// The packet is larger than the relay accepts (`maxPayload`).
    #[error("packet of {size} bytes exceeds the relay's limit of {limit}")]
    TooLarge {
        /// Largest message of the packet as it would be sent.
        size: usize,
        /// The relay's limit.
        limit: usize,
    },
    /// The outgoing queue is full of packets that must not be dropped.
    #[error("outgoing queue full")]
    QueueFull,
    /// No ack arrived within the timeout.
    #[error("no ack within {0:?}")]
    AckTimeout(Duration),
    /// The connection dropped before the ack arrived.
    #[error("disconnected before the ack arrived")]
    AckLost,
    /// The client was closed.
    #[error("client closed")]
    Closed,
}

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
    /// Successful reconnections (the first connection is not counted).
    pub reconnects: u64,
    /// Failed connection attempts in a row right now.
    pub failed_attempts: u32,
    /// The last connection error, if any.
    pub last_error: Option<String>,
    /// Packets waiting in the outgoing queue.
    pub queued: usize,
    /// Bytes waiting in the outgoing queue.
    pub queued_bytes: usize,
    /// Incoming events lost because the event receiver was not read fast enough.
    pub events_dropped: u64,
}

/// What the relay did, delivered through the receiver returned by [`Client::connect`].
#[derive(Debug)]
pub enum ClientEvent {
    /// A namespace is connected (after every reconnect too: re-announce here).
    Connected {
        /// The namespace.
        namespace: String,
    },
    /// A namespace lost its connection; a reconnect follows unless the client is closed.
    Disconnected {
        /// The namespace.
        namespace: String,
        /// Why.
        reason: String,
    },
    /// The relay refused a namespace; retried with backoff.
    ConnectError {
        /// The namespace.
        namespace: String,
        /// The relay's message.
        message: String,
        /// The full CONNECT_ERROR payload.
        data: Value,
    },
    /// An event from the relay.
    Event {
        /// The namespace.
        namespace: String,
        /// The event name.
        name: String,
        /// Its arguments (binary ones as shared `Bytes`).
        args: Vec<Arg>,
        /// Present when the relay asked for an ack.
        ack: Option<AckResponder>,
    },
}

/// Answers an event the relay sent with an ack id.
#[derive(Debug)]
pub struct AckResponder {
    shared: Arc<Shared>,
    namespace: String,
    id: u64,
}

impl AckResponder {
    /// Sends the ack with `args` (binary allowed).
    pub fn send(self, args: Vec<Arg>) -> Result<(), ClientError> {
        let packet = Packet::ack(&self.namespace, self.id, args);
        self.shared
            .enqueue(&self.namespace, packet.encode(), Class::Control)
    }
}

/// The outcome of [`ClientHandle::send_media`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaPush {
    /// Queued for sending.
    Queued,
    /// Dropped by the queue policy (full, or a delta frame before the next keyframe).
    Dropped,
    /// Dropped because the namespace is not connected.
    NotConnected,
    /// Dropped because it exceeds the relay's `maxPayload`.
    TooLarge,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    sent_bytes: AtomicU64,
    dropped_offline: AtomicU64,
    discarded: AtomicU64,
    too_large: AtomicU64,
    reconnects: AtomicU64,
    events_dropped: AtomicU64,
}

struct Inner {
    queue: OutQueue<Encoded>,
    connected: HashSet<String>,
    state: ConnState,
    last_error: Option<String>,
    failed_attempts: u32,
}

/// State shared by the handles, the driver and the writer.
struct Shared {
    inner: Mutex<Inner>,
    /// Wakes the writer when the queue gets an item.
    notify: Notify,
    counters: Counters,
    next_ack: AtomicU64,
    acks: Mutex<HashMap<u64, oneshot::Sender<Vec<Arg>>>>,
    /// The relay's limit for one Engine.IO message (from the handshake).
    max_payload: AtomicU64,
    /// Whether the current transport is long-polling (binary is base64 there).
    polling: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

fn encoded_len(e: &Encoded) -> usize {
    e.text.len() + e.attachments.iter().map(Bytes::len).sum::<usize>()
}

impl Shared {
    fn new(opts: &crate::config::QueueLimits) -> Shared {
        Shared {
            inner: Mutex::new(Inner {
                queue: OutQueue::new(opts.max_frames, opts.max_bytes.as_usize()),
                connected: HashSet::new(),
                state: ConnState::Connecting,
                last_error: None,
                failed_attempts: 0,
            }),
            notify: Notify::new(),
            counters: Counters::default(),
            next_ack: AtomicU64::new(0),
            acks: Mutex::new(HashMap::new()),
            max_payload: AtomicU64::new(DEFAULT_MAX_PAYLOAD),
            polling: AtomicBool::new(false),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the queue inconsistent in a way that
        // matters more than stopping the stream; keep going with the data as it is.
        lock(&self.inner)
    }

    fn lock_acks(&self) -> MutexGuard<'_, HashMap<u64, oneshot::Sender<Vec<Arg>>>> {
        lock(&self.acks)
    }

    /// Checks an encoded packet against the relay's limit as it would travel on the current
    /// transport: each Engine.IO message (text part, each attachment) must fit in `maxPayload`.
    fn check_size(&self, e: &Encoded) -> Result<(), ClientError> {
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
    fn enqueue(&self, ns: &str, e: Encoded, class: Class) -> Result<(), ClientError> {
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
    fn pop(&self) -> Option<Encoded> {
        let e = self.lock().queue.pop()?;
        self.counters.sent.fetch_add(1, Ordering::Relaxed);
        self.counters
            .sent_bytes
            .fetch_add(encoded_len(&e) as u64, Ordering::Relaxed);
        Some(e)
    }

    /// After a disconnect: nothing queued survives (media would be stale, acks and emits belong
    /// to the old session), pending acks fail, every namespace is down.
    fn reset_link(&self, state: ConnState, error: Option<String>) -> Vec<String> {
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
        if error.is_some() {
            inner.last_error = error;
        }
        let was: Vec<String> = inner.connected.drain().collect();
        drop(inner);
        self.lock_acks().clear();
        was
    }

    fn stats(&self) -> ClientStats {
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
            failed_attempts: inner.failed_attempts,
            last_error: inner.last_error.clone(),
            queued: inner.queue.len(),
            queued_bytes: inner.queue.bytes(),
            events_dropped: c.events_dropped.load(Ordering::Relaxed),
        }
    }
}

/// Builds the CONNECT payload of a namespace at every connection attempt (e.g. from a token
/// file that may be rotated); replaces the static `auth` of the options.
pub type AuthProvider = Arc<dyn Fn(&str) -> Option<Value> + Send + Sync>;

/// Entry point: see the module docs.
pub struct Client;

impl Client {
    /// Validates `options`, starts connecting in the background (on the current tokio runtime)
    /// and returns the handle and the event receiver (bounded: events are dropped and counted
    /// when it is not read).
    ///
    /// # Panics
    /// Outside a tokio runtime.
    pub fn connect(
        options: ClientOptions,
    ) -> Result<(ClientHandle, mpsc::Receiver<ClientEvent>), ClientError> {
        Client::connect_with_auth(options, None)
    }

    /// Like [`Client::connect`], with the CONNECT payloads built by `auth` at every attempt.
    pub fn connect_with_auth(
        options: ClientOptions,
        auth: Option<AuthProvider>,
    ) -> Result<(ClientHandle, mpsc::Receiver<ClientEvent>), ClientError> {
        let endpoint = options.validate()?;
        let tls = if endpoint.tls {
            Some(tls::client_config(&options.tls).map_err(|e| ClientError::Tls(e.to_string()))?)
        } else {
            None
        };
        let shared = Arc::new(Shared::new(&options.queue));
        let (events_tx, events_rx) = mpsc::channel(EVENTS_CAPACITY);
        let (close_tx, close_rx) = mpsc::channel(1);
        let dialer = transport::Dialer {
            endpoint,
            tls,
            headers: options.headers.clone(),
            timeout: options.connect_timeout,
        };
        let task = tokio::spawn(driver::run(
            options,
            auth,
            dialer,
            shared.clone(),
            events_tx,
            close_rx,
        ));
        let handle = ClientHandle {
            shared,
            close_tx,
            task: Arc::new(Mutex::new(Some(task))),
        };
        Ok((handle, events_rx))
    }
}

/// Capacity of the event receiver.
const EVENTS_CAPACITY: usize = 1024;

/// Sends to the relay and reads the client's state. Clones share the same connection.
#[derive(Clone)]
pub struct ClientHandle {
    shared: Arc<Shared>,
    close_tx: mpsc::Sender<()>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle").finish_non_exhaustive()
    }
}

impl ClientHandle {
    /// Emits `event` with `args` (JSON and binary) to `namespace`. Fails when the namespace is
    /// not connected, the packet is too large, or the queue is full of undroppable packets.
    pub fn emit(&self, namespace: &str, event: &str, args: Vec<Arg>) -> Result<(), ClientError> {
        let packet = Packet::event(namespace, event, args, None);
        self.shared
            .enqueue(namespace, packet.encode(), Class::Control)
    }

    /// Emits best-effort: dropped (returns false) when not connected or when the queue is full.
    pub fn emit_volatile(&self, namespace: &str, event: &str, args: Vec<Arg>) -> bool {
        let packet = Packet::event(namespace, event, args, None);
        match self
            .shared
            .enqueue(namespace, packet.encode(), Class::Volatile)
        {
            Ok(()) => true,
            Err(ClientError::NotConnected(_)) => {
                self.shared
                    .counters
                    .dropped_offline
                    .fetch_add(1, Ordering::Relaxed);
                false
            }
            // Counted by the queue (full) or as too large.
            Err(_) => false,
        }
    }

    /// Emits and waits up to `timeout` for the relay's ack; returns its arguments.
    pub async fn emit_with_ack(
        &self,
        namespace: &str,
        event: &str,
        args: Vec<Arg>,
        timeout: Duration,
    ) -> Result<Vec<Arg>, ClientError> {
        let id = self.shared.next_ack.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.shared.lock_acks().insert(id, tx);
        let packet = Packet::event(namespace, event, args, Some(id));
        if let Err(e) = self
            .shared
            .enqueue(namespace, packet.encode(), Class::Control)
        {
            self.shared.lock_acks().remove(&id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => Ok(args),
            Ok(Err(_)) => Err(ClientError::AckLost),
            Err(_) => {
                self.shared.lock_acks().remove(&id);
                Err(ClientError::AckTimeout(timeout))
            }
        }
    }

    /// Hands a media frame over without ever blocking: emits `media` with `[meta, frame]` to
    /// `namespace` through the media-aware queue (`class` decides the drop policy). A frame that
    /// cannot be sent is dropped and counted; the result says why.
    pub fn send_media(
        &self,
        namespace: &str,
        meta: Value,
        frame: Bytes,
        class: Class,
    ) -> MediaPush {
        let packet = Packet::event(
            namespace,
            "media",
            vec![Arg::Json(meta), Arg::Binary(frame)],
            None,
        );
        match self.shared.enqueue(namespace, packet.encode(), class) {
            Ok(()) => MediaPush::Queued,
            Err(ClientError::TooLarge { size, limit }) => {
                let n = self.shared.counters.too_large.load(Ordering::Relaxed);
                if n.is_power_of_two() {
                    tracing::warn!(
                        "dropping a {size}-byte media frame: the relay accepts at most {limit} bytes per message ({n} dropped so far)"
                    );
                }
                MediaPush::TooLarge
            }
            Err(ClientError::NotConnected(_)) => {
                self.shared
                    .counters
                    .dropped_offline
                    .fetch_add(1, Ordering::Relaxed);
                MediaPush::NotConnected
            }
            Err(_) => MediaPush::Dropped,
        }
    }

    /// Whether `namespace` is connected right now.
    pub fn is_connected(&self, namespace: &str) -> bool {
        self.shared.lock().connected.contains(namespace)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> ClientStats {
        self.shared.stats()
    }

    /// Disconnects every namespace, closes the session and stops reconnecting. Waits at most
    /// two seconds for the goodbye to be written.
    pub async fn close(&self) {
        let _ = self.close_tx.try_send(());
        let task = lock(&self.task).take();
        if let Some(mut task) = task
            && tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
        {
            task.abort();
        }
        self.shared.reset_link(ConnState::Closed, None);
    }
}
