//! [`ClientHandle`]: what the program holds to send to the relay and read the client's state.

use super::error::ClientError;
use super::link::{ClientStats, ConnState, Link};
use crate::queue::Class;
use crate::socketio::{Arg, Packet};
use crate::sync::lock;
use bytes::Bytes;
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, oneshot};

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

/// Sends to the relay and reads the client's state. Clones share the same connection.
#[derive(Clone)]
pub struct ClientHandle {
    shared: Arc<Link>,
    close_tx: mpsc::Sender<()>,
    task: Arc<Mutex<Option<tokio::task::JoinHandle<()>>>>,
}

impl std::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle").finish_non_exhaustive()
    }
}

impl ClientHandle {
    pub(super) fn new(
        shared: Arc<Link>,
        close_tx: mpsc::Sender<()>,
        task: tokio::task::JoinHandle<()>,
    ) -> ClientHandle {
        ClientHandle {
            shared,
            close_tx,
            task: Arc::new(Mutex::new(Some(task))),
        }
    }

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
        let (tx, rx) = oneshot::channel();
        let id = lock(&self.shared.acks)
            .register(tx, Instant::now(), timeout)
            .map_err(ClientError::TooManyAcks)?;
        let packet = Packet::event(namespace, event, args, Some(id));
        if let Err(e) = self
            .shared
            .enqueue(namespace, packet.encode(), Class::Control)
        {
            lock(&self.shared.acks).cancel(id);
            return Err(e);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => Ok(args),
            Ok(Err(_)) => Err(ClientError::AckLost),
            Err(_) => {
                lock(&self.shared.acks).cancel(id);
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
