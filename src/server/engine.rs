//! Engine.IO sessions on the server: the registry, each connection's bounded outgoing queue, the
//! heartbeat, transport state (polling, upgrading, WebSocket) and close semantics.
//!
//! The transports (`http.rs`) only move bytes: they feed decoded packets to
//! [`Conn::receive`] and drain [`Conn`]'s queue. What a message *means* is up to the endpoint's
//! [`EngineHandler`] (Socket.IO, or the raw echo of the conformance server).

use super::encoded::{self, EncodedPacket};
use crate::engineio::{Handshake, Packet, Str, generate_sid};
use crate::hub::queue::{Class, OutQueue, Push};
use bytes::Bytes;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::Duration;
use tokio::sync::{Notify, watch};

/// Engine.IO settings shared by every session of a server.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Interval between server pings (default 25 s).
    pub ping_interval: Duration,
    /// How long to wait for the pong (default 20 s).
    pub ping_timeout: Duration,
    /// Largest accepted message / polling payload in bytes (default 1,000,000).
    pub max_payload: usize,
    /// Outgoing queue bound per connection, in packets.
    pub queue_items: usize,
    /// Outgoing queue bound per connection, in bytes.
    pub queue_bytes: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            queue_items: 1024,
            queue_bytes: 8 << 20,
        }
    }
}

/// Why an Engine.IO session ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed the transport or sent a close packet.
    TransportClose,
    /// An I/O error, an aborted poll or a concurrent poll.
    TransportError,
    /// The client did not answer a ping within the ping timeout.
    PingTimeout,
    /// The client sent bytes that do not decode.
    ParseError,
    /// The server closed the session (after flushing what was queued).
    ServerClose,
    /// The server is shutting down.
    ServerShutdown,
    /// A control packet did not fit in the outgoing queue: the client cannot keep up.
    QueueOverflow,
}

impl CloseReason {
    /// Closes the server decided on flush queued packets and tell the client with a close packet.
    fn graceful(self) -> bool {
        matches!(self, CloseReason::ServerClose | CloseReason::ServerShutdown)
    }

    /// A polling client learns about these closes from its next poll, so the session is kept
    /// for it (a close it asked for is answered with a noop, a server close with a close packet).
    fn lingers(self) -> bool {
        self.graceful() || self == CloseReason::TransportClose
    }
}

/// The transport a session currently uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// A WebSocket probe is in progress; polls are released with a noop.
    Upgrading,
    /// WebSocket (direct, or after an upgrade).
    WebSocket,
}

/// One application message received from a client.
#[derive(Debug, Clone)]
pub enum Incoming {
    /// A text message (the `4` prefix removed).
    Text(Str),
    /// A binary message.
    Binary(Bytes),
}

/// What an endpoint does with a connection's messages. Calls for one connection never overlap
/// in a way that reorders messages: they come from that connection's reader.
pub trait ConnHandler: Send + Sync + 'static {
    /// A message from the client.
    fn message(self: Arc<Self>, conn: &Arc<Conn>, msg: Incoming);
    /// The session ended (called once).
    fn close(self: Arc<Self>, conn: &Arc<Conn>, reason: CloseReason);
}

/// An Engine.IO endpoint: makes the handler of each new connection.
pub trait EngineHandler: Send + Sync + 'static {
    /// A new session was opened; `conn` is ready to send.
    fn open(&self, conn: &Arc<Conn>) -> Arc<dyn ConnHandler>;
}

struct State {
    queue: OutQueue<Arc<EncodedPacket>>,
    transport: Transport,
    polling: bool,
    posting: bool,
    pong_seen: bool,
    /// When the current heartbeat cycle started (session open or last pong).
    cycle: tokio::time::Instant,
    closed: Option<CloseReason>,
}

/// One Engine.IO session.
pub struct Conn {
    sid: Str,
    engine: Weak<Engine>,
    state: Mutex<State>,
    wake: Notify,
    pong: Notify,
    closed_tx: watch::Sender<bool>,
    handler: OnceLock<Arc<dyn ConnHandler>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("sid", &self.sid).finish()
    }
}

/// A batch of queued packets for a transport to write.
pub(crate) enum Drain {
    /// Packets to send.
    Packets(Vec<Arc<EncodedPacket>>),
    /// Nothing queued; wait on [`Conn::wait`].
    Empty,
    /// The session is closed (and what a graceful close had to flush is sent): say so.
    Closed(CloseReason),
}

impl Conn {
    /// The Engine.IO session id.
    pub fn sid(&self) -> &Str {
        &self.sid
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent in a way that
        // matters more than losing the connection; keep serving.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Queues a packet under a drop class. `Push::Overflow` closes the session.
    pub fn push(self: &Arc<Self>, packet: Arc<EncodedPacket>, class: Class) -> Push {
        let bytes = packet.len();
        let result = {
            let mut st = self.lock();
            if st.closed.is_some() {
                return Push::Dropped;
            }
            st.queue.push(packet, class, bytes)
        };
        match result {
            Push::Queued => self.wake.notify_one(),
            Push::Overflow => self.close(CloseReason::QueueOverflow),
            Push::Dropped => {}
        }
        result
    }

    /// Queues a control packet (never dropped; overflow closes the session).
    pub fn send(self: &Arc<Self>, packet: Arc<EncodedPacket>) -> Push {
        self.push(packet, Class::Control)
    }

    /// Ends the session. Server closes ([`CloseReason::ServerClose`], shutdown) first flush what
    /// is queued and end with a close packet.
    pub fn close(self: &Arc<Self>, reason: CloseReason) {
        let remove_now = {
            let mut st = self.lock();
            if st.closed.is_some() {
                return;
            }
            st.closed = Some(reason);
            // A graceful polling close waits for the next poll to deliver the rest.
            !(reason.lingers() && st.transport != Transport::WebSocket)
        };
        tracing::debug!(sid = %self.sid.as_str(), ?reason, "engine.io session closed");
        self.closed_tx.send_replace(true);
        self.wake.notify_one();
        if let Some(engine) = self.engine.upgrade() {
            if remove_now {
                engine.remove(&self.sid);
            } else {
                // Give the client one poll to collect the close; then forget the session.
                let sid = self.sid.clone();
                let wait = engine.config.ping_timeout;
                let weak = Arc::downgrade(&engine);
                tokio::spawn(async move {
                    tokio::time::sleep(wait).await;
                    if let Some(engine) = weak.upgrade() {
                        engine.remove(&sid);
                    }
                });
            }
        }
        if let Some(handler) = self.handler.get() {
            handler.clone().close(self, reason);
        }
    }

    /// True once the session is closed.
    pub fn is_closed(&self) -> bool {
        self.lock().closed.is_some()
    }

    /// Resolves when the session is closed.
    pub async fn closed(&self) {
        let mut rx = self.closed_tx.subscribe();
        // The sender lives as long as `self`; an error cannot happen while we borrow it.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// The current transport.
    pub fn transport(&self) -> Transport {
        self.lock().transport
    }

    /// Handles one decoded packet from the client (either transport).
    pub(crate) fn receive(self: &Arc<Self>, packet: Packet) {
        match packet {
            Packet::Pong => {
                let mut st = self.lock();
                st.pong_seen = true;
                st.cycle = tokio::time::Instant::now();
                drop(st);
                self.pong.notify_one();
            }
            Packet::Message(text) => self.deliver(Incoming::Text(text)),
            Packet::Binary(data) => self.deliver(Incoming::Binary(data)),
            Packet::Close => self.close(CloseReason::TransportClose),
            Packet::Noop | Packet::Upgrade => {}
            // v4 clients do not ping (except the probe, handled by the upgrade); be lenient.
            Packet::Ping => {
                self.send(Arc::new(EncodedPacket::new(vec![Packet::Pong])));
            }
            Packet::Open(_) | Packet::PingProbe | Packet::PongProbe => {
                self.close(CloseReason::ParseError)
            }
        }
    }

    fn deliver(self: &Arc<Self>, msg: Incoming) {
        if let Some(handler) = self.handler.get() {
            handler.clone().message(self, msg);
        }
    }

    /// Takes up to `max_bytes` (at least one packet) from the queue.
    pub(crate) fn drain(&self, max_bytes: usize) -> Drain {
        let mut st = self.lock();
        let mut out = Vec::new();
        let mut total = 0;
        let flush = st.closed.is_none_or(CloseReason::graceful);
        while total < max_bytes && flush {
            let Some(p) = st.queue.pop() else { break };
            total += p.len();
            out.push(p);
        }
        // The close goes alone, after the last packets: a client that handles a payload's
        // packets asynchronously must see them before it sees the transport close.
        match st.closed {
            Some(reason) if out.is_empty() => Drain::Closed(reason),
            _ if out.is_empty() => Drain::Empty,
            _ => Drain::Packets(out),
        }
    }

    /// Waits until something was queued or the state changed.
    pub(crate) async fn wait(&self) {
        self.wake.notified().await
    }

    /// Wakes whoever waits on the queue (a state change they must look at).
    pub(crate) fn wake(&self) {
        self.wake.notify_one()
    }

    /// Starts a poll: fails when the session is not polling or another poll is active.
    pub(crate) fn begin_poll(self: &Arc<Self>) -> Result<(), PollError> {
        let mut st = self.lock();
        if st.closed.is_some_and(|r| !r.lingers()) {
            return Err(PollError::Closed);
        }
        if st.transport == Transport::WebSocket {
            return Err(PollError::WrongTransport);
        }
        if st.polling {
            drop(st);
            self.close(CloseReason::TransportError);
            return Err(PollError::Concurrent);
        }
        st.polling = true;
        Ok(())
    }

    /// Ends a poll started with [`Conn::begin_poll`]; once the poll delivered the close, the
    /// session is forgotten.
    pub(crate) fn end_poll(self: &Arc<Self>, delivered_close: bool) {
        self.lock().polling = false;
        if delivered_close && let Some(engine) = self.engine.upgrade() {
            engine.remove(&self.sid);
        }
    }

    /// Starts handling a POST: fails when one is already in progress (closing the session).
    pub(crate) fn begin_post(self: &Arc<Self>) -> Result<(), PollError> {
        let mut st = self.lock();
        if st.closed.is_some() {
            return Err(PollError::Closed);
        }
        if st.transport == Transport::WebSocket {
            return Err(PollError::WrongTransport);
        }
        if st.posting {
            drop(st);
            self.close(CloseReason::TransportError);
            return Err(PollError::Concurrent);
        }
        st.posting = true;
        Ok(())
    }

    /// Ends a POST.
    pub(crate) fn end_post(&self) {
        self.lock().posting = false;
    }

    /// Starts an upgrade probe on a polling session.
    pub(crate) fn begin_upgrade(&self) -> bool {
        let mut st = self.lock();
        if st.closed.is_some() || st.transport != Transport::Polling {
            return false;
        }
        st.transport = Transport::Upgrading;
        true
    }

    /// The probe succeeded (`5` received): the session now uses WebSocket.
    pub(crate) fn finish_upgrade(&self) {
        self.lock().transport = Transport::WebSocket;
        self.wake.notify_one();
    }

    /// The probe failed: back to polling.
    pub(crate) fn abort_upgrade(&self) {
        let mut st = self.lock();
        if st.transport == Transport::Upgrading {
            st.transport = Transport::Polling;
        }
    }

    /// Pings every `interval` after the previous pong (as the reference server does) and closes
    /// the session when a pong does not arrive within `timeout`.
    async fn heartbeat(self: Arc<Self>, interval: Duration, timeout: Duration) {
        let mut closed = self.closed_tx.subscribe();
        loop {
            let cycle = self.lock().cycle;
            tokio::select! {
                _ = tokio::time::sleep_until(cycle + interval) => {}
                _ = closed.wait_for(|c| *c) => return,
            }
            self.lock().pong_seen = false;
            self.send(encoded::ping());
            // The deadline follows the schedule, not this task's (possibly late) wake-up.
            let deadline = tokio::time::sleep_until(cycle + interval + timeout);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    _ = &mut deadline => {
                        self.close(CloseReason::PingTimeout);
                        return;
                    }
                    _ = self.pong.notified() => if self.lock().pong_seen { break },
                    _ = closed.wait_for(|c| *c) => return,
                }
            }
        }
    }

    /// True when the heartbeat deadline passed without a pong (checked on every request, so
    /// that a late timer cannot keep a dead polling session alive).
    fn expired(&self, interval: Duration, timeout: Duration) -> bool {
        let st = self.lock();
        st.closed.is_none() && tokio::time::Instant::now() >= st.cycle + interval + timeout
    }
}

/// Why a poll or POST was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PollError {
    /// The session is closed.
    Closed,
    /// The session uses WebSocket now.
    WrongTransport,
    /// Another poll/POST is in progress (the session was closed).
    Concurrent,
}

/// An Engine.IO endpoint: its settings, handler and open sessions.
pub struct Engine {
    pub(crate) config: EngineConfig,
    handler: Arc<dyn EngineHandler>,
    conns: Mutex<HashMap<Str, Arc<Conn>>>,
}

impl Engine {
    /// An endpoint with `config` whose connections are handled by `handler`.
    pub fn new(config: EngineConfig, handler: Arc<dyn EngineHandler>) -> Arc<Self> {
        Arc::new(Engine {
            config,
            handler,
            conns: Mutex::new(HashMap::new()),
        })
    }

    fn conns(&self) -> MutexGuard<'_, HashMap<Str, Arc<Conn>>> {
        self.conns.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a session on `transport`; the handshake packet is the first thing queued.
    pub(crate) fn open(
        self: &Arc<Self>,
        transport: Transport,
    ) -> Result<Arc<Conn>, getrandom::Error> {
        let sid = Str::from(generate_sid()?);
        let cfg = &self.config;
        let conn = Arc::new(Conn {
            sid: sid.clone(),
            engine: Arc::downgrade(self),
            state: Mutex::new(State {
                queue: OutQueue::new(cfg.queue_items, cfg.queue_bytes),
                transport,
                polling: false,
                posting: false,
                pong_seen: false,
                cycle: tokio::time::Instant::now(),
                closed: None,
            }),
            wake: Notify::new(),
            pong: Notify::new(),
            closed_tx: watch::Sender::new(false),
            handler: OnceLock::new(),
        });
        let open = Handshake {
            sid: sid.as_str().to_owned(),
            upgrades: if transport == Transport::Polling {
                vec!["websocket".to_owned()]
            } else {
                Vec::new()
            },
            ping_interval: cfg.ping_interval.as_millis() as u64,
            ping_timeout: cfg.ping_timeout.as_millis() as u64,
            max_payload: cfg.max_payload as u64,
        };
        conn.send(Arc::new(EncodedPacket::new(vec![Packet::Open(Str::from(
            open.to_json(),
        ))])));
        self.conns().insert(sid, conn.clone());
        let handler = self.handler.open(&conn);
        let _ = conn.handler.set(handler);
        tokio::spawn(conn.clone().heartbeat(cfg.ping_interval, cfg.ping_timeout));
        Ok(conn)
    }

    /// Looks a session up by sid.
    pub(crate) fn get(&self, sid: &str) -> Option<Arc<Conn>> {
        let conn = self.conns().get(&Str::from(sid)).cloned()?;
        if conn.expired(self.config.ping_interval, self.config.ping_timeout) {
            conn.close(CloseReason::PingTimeout);
            return None;
        }
        Some(conn)
    }

    fn remove(&self, sid: &Str) {
        self.conns().remove(sid);
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.conns().len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.conns().is_empty()
    }

    /// Closes every session (server shutdown).
    pub fn close_all(&self, reason: CloseReason) {
        let conns: Vec<_> = self.conns().values().cloned().collect();
        for conn in conns {
            conn.close(reason);
        }
    }
}
