//! Engine.IO sessions on the server: the registry and, per connection, the sans-IO
//! [`Session`] (transport state, heartbeat, upgrade probe, close) next to the bounded
//! application queue, plus the timer task that drives the session's deadlines.
//!
//! The transports (`polling.rs`, `websocket.rs`) only move bytes: every input (a poll, a POST body, a WebSocket
//! frame, a transport gone, a timeout, the application's close) goes through [`Conn`] into the
//! session; a transport takes the session's control packets and the application queue when it
//! can carry them. What a message *means* is up to the endpoint's [`EngineHandler`].

use super::encoded::{self, EncodedPacket};
use super::sink::{Cursor, MAX_SLICES, TcpSink};
use crate::engineio::{
    Packet, RequestError, Session, SessionConfig, SessionEvent, State as SessionState, Str,
    TransportKind, WsFrame, generate_sid,
};
use crate::queue::{Class, OutQueue, Push};
use crate::sync::lock;
use bytes::{Bytes, BytesMut};
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::{Notify, watch};

pub use crate::engineio::CloseReason;

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
    /// Most sessions open at once; a handshake beyond it is refused.
    pub max_sessions: usize,
    /// Most sessions open at once from one address (as connection limits count it); 0: no
    /// limit.
    pub max_sessions_per_address: usize,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            queue_items: 1024,
            queue_bytes: 8 << 20,
            max_sessions: usize::MAX,
            max_sessions_per_address: 0,
        }
    }
}

impl EngineConfig {
    fn session(&self) -> SessionConfig {
        SessionConfig {
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            max_payload: self.max_payload,
            ..SessionConfig::default()
        }
    }
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

/// A WebSocket attached to a session (an upgrade candidate or the established transport).
/// Its reader and writer hold it; the session's connection knows which one is attached.
pub(crate) struct WsLink {
    /// Wakes the writer: something to send, or the session or the attachment changed.
    wake: Notify,
    /// RFC 6455 close code for a close the WebSocket itself caused (framing error, oversize).
    close_code: AtomicU16,
    /// The plain-TCP write half, once the WebSocket runs: lets producers write to the socket
    /// while the writer task is idle (see [`super::sink`]).
    direct: OnceLock<Arc<TcpSink>>,
}

impl WsLink {
    fn new() -> Arc<WsLink> {
        Arc::new(WsLink {
            wake: Notify::new(),
            close_code: AtomicU16::new(0),
            direct: OnceLock::new(),
        })
    }

    /// Lets producers write to this plain-TCP WebSocket directly while its writer is idle.
    pub(crate) fn set_direct(&self, sink: Arc<TcpSink>) {
        let _ = self.direct.set(sink);
    }

    /// Waits until the writer has something to look at.
    pub(crate) async fn wait(&self) {
        self.wake.notified().await
    }

    /// Records the close code to send for a WebSocket-level error (before reporting it).
    pub(crate) fn set_close_code(&self, code: u16) {
        self.close_code.store(code, Ordering::Relaxed);
    }

    /// The close code recorded by [`WsLink::set_close_code`], if any.
    pub(crate) fn close_code(&self) -> Option<u16> {
        Some(self.close_code.load(Ordering::Relaxed)).filter(|&c| c != 0)
    }
}

struct State {
    session: Session,
    queue: OutQueue<Arc<EncodedPacket>>,
    /// True once application messages go to the WebSocket (direct, or after the upgrade).
    on_ws: bool,
    /// The attached WebSocket, if any.
    ws: Option<Arc<WsLink>>,
    /// The pong frame the attached WebSocket owes for a WebSocket ping.
    ws_pong: Option<Bytes>,
    /// The attached WebSocket's writer task is writing a batch (from [`Conn::ws_drain`] until
    /// its next call): nobody else may write to the socket.
    ws_writing: bool,
    /// What a direct write left unwritten: the writer task finishes it before anything else.
    ws_unsent: Option<(Vec<Arc<EncodedPacket>>, Cursor)>,
    /// Registered with this thread's cork: written when the reader uncorks.
    corked: bool,
    /// The deadline the timer task sleeps until.
    armed: Option<Instant>,
    /// Removed from the engine's registry.
    forgotten: bool,
}

impl State {
    fn attached(&self, link: &Arc<WsLink>) -> bool {
        self.ws.as_ref().is_some_and(|w| Arc::ptr_eq(w, link))
    }

    /// True when queued application messages are for `transport` now: it carries them, and
    /// the session is open or closed with a close that flushes the queue.
    fn queue_goes_to(&self, transport: TransportKind) -> bool {
        self.on_ws == (transport == TransportKind::WebSocket)
            && self
                .session
                .close_reason()
                .is_none_or(CloseReason::flushes_queue)
            && !self.queue.is_empty()
    }

    /// Takes up to `max_bytes` of queued packets (at least one).
    fn take_queued(&mut self, max_bytes: usize, mut each: impl FnMut(Arc<EncodedPacket>)) {
        let mut total = 0;
        while total < max_bytes {
            let Some(p) = self.queue.pop() else { break };
            total += p.len();
            each(p);
        }
    }

    fn wake_ws(&self) {
        if let Some(ws) = &self.ws {
            ws.wake.notify_one();
        }
    }

    /// The plain-TCP socket of the WebSocket that carries the queue, if it has one.
    fn direct(&self) -> Option<&Arc<TcpSink>> {
        self.ws
            .as_ref()
            .and_then(|l| l.direct.get())
            .filter(|_| self.on_ws)
    }

    /// Writes the queue straight to the socket when the writer task is idle and nothing else is
    /// owed first: vectored writes pointed at the queued packets in place (up to
    /// [`DIRECT_BATCH`] each), popping only what the socket took, until the queue is empty or
    /// the socket is full. What stays queued stays under the drop policy; a packet the socket
    /// took part of is finished by the writer task before anything else, and the writer task
    /// (woken only then) waits for a full socket.
    fn write_direct(&mut self) {
        let idle = !self.ws_writing
            && self.ws_unsent.is_none()
            && self.ws_pong.is_none()
            && !self.session.has_transmit(TransportKind::WebSocket)
            && self.queue_goes_to(TransportKind::WebSocket);
        let Some(sink) = self.direct().filter(|_| idle).cloned() else {
            return self.wake_ws();
        };
        while !self.queue.is_empty() {
            let mut slices = Vec::with_capacity(self.queue.len().min(MAX_SLICES));
            let gathered = Cursor::default().gather(self.queue.iter(), &mut slices, DIRECT_BATCH);
            let written = match sink.try_write_vectored(&slices) {
                Ok(w) if w > 0 => w,
                // A full socket (or a failed one): the writer task waits for it (or reports it).
                _ => return self.wake_ws(),
            };
            drop(slices);
            let mut left = written;
            while let Some(len) = self.queue.front().map(|p| p.len()) {
                if len > left {
                    break;
                }
                left -= len;
                self.queue.pop();
            }
            if left > 0
                && let Some(partial) = self.queue.pop()
            {
                let mut cursor = Cursor::default();
                cursor.advance(left, std::slice::from_ref(&partial));
                self.ws_unsent = Some((vec![partial], cursor));
                return self.wake_ws();
            }
            if written < gathered {
                return self.wake_ws();
            }
        }
    }
}

/// Bytes one direct vectored write takes from the queue (what a read batch queues for a viewer
/// at a publisher's full rate fits in one or two).
const DIRECT_BATCH: usize = 1 << 20;

/// Bytes the writer task takes out of the queue per batch: it writes to a socket that was full, so
/// a small batch leaves more of a slow viewer's backlog under the drop policy.
const WRITE_BATCH: usize = 256 * 1024;

thread_local! {
    /// True while this thread dispatches a message inside [`corked`].
    static CORKED: Cell<bool> = const { Cell::new(false) };
    /// Connections queued to while corked, for [`uncork`] to write.
    static CORK: RefCell<Vec<Arc<Conn>>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` (a reader dispatching a message it already holds) with direct writes deferred:
/// the plain-TCP WebSockets it queues to are written by the next [`uncork`] on this thread,
/// one batch each, so a publisher's burst reaches each viewer in one `writev`. Call `uncork`
/// before the task can be suspended.
pub(crate) fn corked<R>(f: impl FnOnce() -> R) -> R {
    /// Restores the flag even if `f` panics (a handler's bug must not leave this worker thread
    /// deferring every later write).
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            CORKED.set(self.0);
        }
    }
    let _restore = Restore(CORKED.replace(true));
    f()
}

/// Writes what the connections queued to while corked on this thread.
pub(crate) fn uncork() {
    for conn in CORK.take() {
        let mut st = conn.lock();
        st.corked = false;
        st.write_direct();
    }
}

/// Why a session was not opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum OpenError {
    /// The endpoint has the most sessions allowed, in total or from this address.
    #[error("the most sessions allowed are open")]
    Full,
    /// No randomness for a session id.
    #[error("no randomness for a session id: {0}")]
    Random(getrandom::Error),
}

/// One Engine.IO session.
pub struct Conn {
    sid: Str,
    /// The client's address, as [`EngineConfig::max_sessions_per_address`] counts it.
    address: IpAddr,
    engine: Weak<Engine>,
    state: Mutex<State>,
    /// Wakes a pending poll.
    poll_wake: Notify,
    /// Wakes the timer task (the session's deadline moved).
    timer_wake: Notify,
    closed_tx: watch::Sender<bool>,
    handler: OnceLock<Arc<dyn ConnHandler>>,
}

impl std::fmt::Debug for Conn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Conn").field("sid", &self.sid).finish()
    }
}

/// What a pending poll does next.
pub(crate) enum PollStep {
    /// The response body is ready.
    Answer,
    /// Nothing to send yet: wait on [`Conn::poll_wait`].
    Wait,
    /// The session moved on (upgraded or closed): refuse the request.
    Refuse(RequestError),
}

/// What a WebSocket writer does next.
pub(crate) enum WsStep {
    /// Write the gathered packets, from this position (past what a direct write sent).
    Write(Cursor),
    /// Nothing to send yet: wait on [`WsLink::wait`].
    Wait,
    /// Say goodbye: the session closed for this reason (everything owed is written), or the
    /// WebSocket was dropped from the session (`None`: a failed upgrade).
    Close(Option<CloseReason>),
}

/// Shared encodings of the control packets the session asks to send.
fn control(packet: Packet) -> Arc<EncodedPacket> {
    match packet {
        Packet::Ping => encoded::ping(),
        p => Arc::new(EncodedPacket::new(vec![p])),
    }
}

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl Conn {
    /// The Engine.IO session id.
    pub fn sid(&self) -> &Str {
        &self.sid
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding this lock cannot leave the state inconsistent in a way that
        // matters more than losing the connection; keep serving.
        lock(&self.state)
    }

    /// Feeds one input to the session, then acts on what it decided: wakes the transports and
    /// the timer, forgets a finished session, and hands events to the handler (after the lock
    /// is released, in order). Deadlines that passed are handled first, so that a late timer
    /// cannot keep a dead session alive. `events` is scratch space, reused by readers.
    fn input<R>(
        self: &Arc<Self>,
        events: &mut Vec<SessionEvent>,
        f: impl FnOnce(&mut State, Instant) -> R,
    ) -> R {
        let now = now();
        let (result, forget) = {
            let mut guard = self.lock();
            let st = &mut *guard;
            if st.session.poll_timeout().is_some_and(|d| d <= now) {
                st.session.handle_timeout(now);
            }
            let result = f(st, now);
            while let Some(event) = st.session.poll_event() {
                match event {
                    SessionEvent::Upgraded => {
                        st.on_ws = true;
                        st.wake_ws();
                        self.poll_wake.notify_one();
                    }
                    SessionEvent::UpgradeAborted => {
                        if let Some(ws) = st.ws.take() {
                            ws.wake.notify_one();
                        }
                        st.ws_pong = None;
                    }
                    SessionEvent::Closed(_) => {
                        st.wake_ws();
                        self.poll_wake.notify_one();
                        events.push(event);
                    }
                    SessionEvent::Text(_) | SessionEvent::Binary(_) => events.push(event),
                }
            }
            if st.session.has_transmit(TransportKind::Polling) {
                self.poll_wake.notify_one();
            }
            if st.session.has_transmit(TransportKind::WebSocket) {
                st.wake_ws();
            }
            let deadline = st.session.poll_timeout();
            if deadline != st.armed {
                st.armed = deadline;
                self.timer_wake.notify_one();
            }
            // Once closed, the session stays reachable by sid only for the poll that collects
            // the close it owes.
            let forget = !st.forgotten
                && st.session.is_closed()
                && !st.session.has_transmit(TransportKind::Polling);
            st.forgotten |= forget;
            (result, forget)
        };
        if forget && let Some(engine) = self.engine.upgrade() {
            engine.remove(&self.sid);
        }
        self.dispatch(events);
        result
    }

    fn dispatch(self: &Arc<Self>, events: &mut Vec<SessionEvent>) {
        for event in events.drain(..) {
            let msg = match event {
                SessionEvent::Text(text) => Incoming::Text(text),
                SessionEvent::Binary(data) => Incoming::Binary(data),
                SessionEvent::Closed(reason) => {
                    tracing::debug!(sid = %self.sid.as_str(), %reason, "engine.io session closed");
                    self.closed_tx.send_replace(true);
                    if let Some(h) = self.handler.get() {
                        h.clone().close(self, reason);
                    }
                    continue;
                }
                SessionEvent::Upgraded | SessionEvent::UpgradeAborted => continue,
            };
            if let Some(h) = self.handler.get() {
                h.clone().message(self, msg);
            }
        }
    }

    /// Queues a packet under a drop class. `Push::Overflow` closes the session.
    pub fn enqueue(self: &Arc<Self>, packet: Arc<EncodedPacket>, class: Class) -> Push {
        let bytes = packet.len();
        let result = {
            let mut st = self.lock();
            if st.session.is_closed() {
                return Push::Dropped;
            }
            let result = st.queue.push(packet, class, bytes);
            if let Push::Queued = result {
                if !st.on_ws {
                    self.poll_wake.notify_one();
                } else if st.direct().is_none() {
                    st.wake_ws();
                } else if !CORKED.get() {
                    st.write_direct();
                } else if !st.corked {
                    st.corked = true;
                    CORK.with_borrow_mut(|c| c.push(self.clone()));
                }
            }
            result
        };
        if let Push::Overflow = result {
            self.close(CloseReason::QueueOverflow);
        }
        result
    }

    /// Queues a control packet (never dropped; overflow closes the session).
    pub fn send(self: &Arc<Self>, packet: Arc<EncodedPacket>) -> Push {
        self.enqueue(packet, Class::Control)
    }

    /// Ends the session. Closes the server decides ([`CloseReason::ForcedClose`], shutdown)
    /// first flush what is queued and end with a close packet.
    pub fn close(self: &Arc<Self>, reason: CloseReason) {
        self.session(|s, now| s.close(reason, now));
    }

    /// Feeds one input to the session (see the driving loop in [`crate::engineio::session`]).
    pub(crate) fn session<R>(self: &Arc<Self>, f: impl FnOnce(&mut Session, Instant) -> R) -> R {
        self.input(&mut Vec::new(), |st, now| f(&mut st.session, now))
    }

    /// True once the session is closed.
    pub fn is_closed(&self) -> bool {
        self.lock().session.is_closed()
    }

    /// Resolves when the session is closed.
    pub async fn closed(&self) {
        let mut rx = self.closed_tx.subscribe();
        // The sender lives as long as `self`; an error cannot happen while we borrow it.
        let _ = rx.wait_for(|c| *c).await;
    }

    /// The transport application messages go to (the last one, once closed).
    pub fn transport(&self) -> TransportKind {
        if self.lock().on_ws {
            TransportKind::WebSocket
        } else {
            TransportKind::Polling
        }
    }

    /// Fills the pending poll's response: the session's polling control packets, then up to
    /// `max_bytes` of the queue (at least one packet). A close goes alone, after the last
    /// queued packets: a client that handles a payload's packets asynchronously must see them
    /// before it sees the transport close.
    pub(crate) fn poll_drain(&self, max_bytes: usize, out: &mut BytesMut) -> PollStep {
        let mut guard = self.lock();
        let st = &mut *guard;
        let queued = st.queue_goes_to(TransportKind::Polling);
        while let Some(t) = st.session.peek_transmit_for(TransportKind::Polling) {
            let close = matches!(t.packet, Packet::Close);
            if close && (queued || !out.is_empty()) {
                break;
            }
            if let Some(t) = st.session.poll_transmit_for(TransportKind::Polling) {
                control(t.packet).append_polling(out);
            }
            if close {
                return PollStep::Answer;
            }
        }
        if queued {
            st.take_queued(max_bytes, |p| p.append_polling(out));
        }
        if !out.is_empty() {
            PollStep::Answer
        } else if st.on_ws {
            PollStep::Refuse(RequestError::WrongTransport)
        } else if st.session.is_closed() {
            PollStep::Refuse(RequestError::Closed)
        } else {
            PollStep::Wait
        }
    }

    /// Waits until a pending poll may have something to send.
    pub(crate) async fn poll_wait(&self) {
        self.poll_wake.notified().await
    }

    /// A WebSocket arrived with this session's sid: on `Ok` it is attached as the upgrade
    /// candidate.
    pub(crate) fn attach_ws(self: &Arc<Self>) -> Result<Arc<WsLink>, RequestError> {
        self.input(&mut Vec::new(), |st, now| {
            st.session.handle_ws_attach(now)?;
            let link = WsLink::new();
            st.ws = Some(link.clone());
            st.ws_pong = None;
            st.ws_writing = false;
            st.ws_unsent = None;
            Ok(link)
        })
    }

    /// A message read from `link`. False when its reader should stop: the session closed, or
    /// `link` is not (or no longer) the session's WebSocket.
    pub(crate) fn ws_frame(
        self: &Arc<Self>,
        link: &Arc<WsLink>,
        frame: WsFrame,
        events: &mut Vec<SessionEvent>,
    ) -> bool {
        self.input(events, |st, now| {
            if !st.attached(link) {
                return false;
            }
            st.session.handle_ws_frame(frame, now);
            matches!(
                st.session.state(),
                SessionState::Probing | SessionState::Upgrading | SessionState::WebSocket
            )
        })
    }

    /// A WebSocket ping arrived on `link`: its writer owes `pong_frame` (only the latest).
    pub(crate) fn ws_ping(&self, link: &Arc<WsLink>, pong_frame: Bytes) {
        let mut st = self.lock();
        if st.attached(link) {
            st.ws_pong = Some(pong_frame);
            link.wake.notify_one();
        }
    }

    /// `link` closed (`error`: it failed rather than closed cleanly).
    pub(crate) fn ws_closed(self: &Arc<Self>, link: &Arc<WsLink>, error: bool) {
        self.input(&mut Vec::new(), |st, now| {
            if st.attached(link) {
                st.session.handle_ws_closed(error, now);
            }
        });
    }

    /// Gathers what `link`'s writer sends next: what a direct write left unwritten, a pong
    /// owed, the session's WebSocket control packets, then up to a batch of the queue once the
    /// WebSocket carries it. Until the writer calls again, it alone writes to the socket.
    pub(crate) fn ws_drain(&self, link: &Arc<WsLink>, out: &mut Vec<Arc<EncodedPacket>>) -> WsStep {
        let mut guard = self.lock();
        let st = &mut *guard;
        if !st.attached(link) {
            return WsStep::Close(None);
        }
        st.ws_writing = false;
        let mut from = Cursor::default();
        if let Some((unsent, cursor)) = st.ws_unsent.take() {
            out.extend(unsent);
            from = cursor;
        }
        if let Some(frame) = st.ws_pong.take() {
            out.push(Arc::new(EncodedPacket::ws_control(frame)));
        }
        while let Some(t) = st.session.poll_transmit_for(TransportKind::WebSocket) {
            // A close is said with the close frame, after the rest.
            if !matches!(t.packet, Packet::Close) {
                out.push(control(t.packet));
            }
        }
        if st.queue_goes_to(TransportKind::WebSocket) {
            st.take_queued(WRITE_BATCH, |p| out.push(p));
        }
        if !out.is_empty() {
            st.ws_writing = true;
            WsStep::Write(from)
        } else if let Some(reason) = st.session.close_reason() {
            WsStep::Close(Some(reason))
        } else {
            WsStep::Wait
        }
    }

    /// Drives the session's deadlines (pings, pong and upgrade timeouts, the wait for a
    /// closed session's last poll) until it is finished.
    async fn run_timer(self: Arc<Self>) {
        let mut events = Vec::new();
        loop {
            let Some(deadline) = self.lock().armed else {
                return;
            };
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.into()) => {
                    // `input` handles the deadlines that passed.
                    self.input(&mut events, |_, _| ());
                }
                _ = self.timer_wake.notified() => {}
            }
        }
    }
}

/// An Engine.IO endpoint: its settings, handler and open sessions.
pub struct Engine {
    pub(crate) config: EngineConfig,
    handler: Arc<dyn EngineHandler>,
    conns: Mutex<Sessions>,
}

/// The open sessions of an endpoint, by sid, and how many from each address.
#[derive(Default)]
struct Sessions {
    by_sid: HashMap<Str, Arc<Conn>>,
    by_address: HashMap<IpAddr, usize>,
}

impl Engine {
    /// An endpoint with `config` whose connections are handled by `handler`.
    pub fn new(config: EngineConfig, handler: Arc<dyn EngineHandler>) -> Arc<Self> {
        Arc::new(Engine {
            config,
            handler,
            conns: Mutex::new(Sessions::default()),
        })
    }

    fn conns(&self) -> MutexGuard<'_, Sessions> {
        lock(&self.conns)
    }

    /// Opens a long-polling session for a client at `address`; its first poll collects the
    /// handshake.
    pub(crate) fn open_polling(self: &Arc<Self>, address: IpAddr) -> Result<Arc<Conn>, OpenError> {
        self.open(TransportKind::Polling, None, address)
    }

    /// Opens a session on a WebSocket from `address`, attached as `link`; the handshake is its
    /// first frame.
    pub(crate) fn open_ws(
        self: &Arc<Self>,
        address: IpAddr,
    ) -> Result<(Arc<Conn>, Arc<WsLink>), OpenError> {
        let link = WsLink::new();
        let conn = self.open(TransportKind::WebSocket, Some(link.clone()), address)?;
        Ok((conn, link))
    }

    fn open(
        self: &Arc<Self>,
        transport: TransportKind,
        ws: Option<Arc<WsLink>>,
        address: IpAddr,
    ) -> Result<Arc<Conn>, OpenError> {
        let sid = Str::from(generate_sid().map_err(OpenError::Random)?);
        let cfg = &self.config;
        let session = Session::new(sid.clone(), transport, cfg.session(), now());
        let conn = Arc::new(Conn {
            sid: sid.clone(),
            address,
            engine: Arc::downgrade(self),
            state: Mutex::new(State {
                armed: session.poll_timeout(),
                session,
                queue: OutQueue::new(cfg.queue_items, cfg.queue_bytes),
                on_ws: transport == TransportKind::WebSocket,
                ws,
                ws_pong: None,
                ws_writing: false,
                ws_unsent: None,
                corked: false,
                forgotten: false,
            }),
            poll_wake: Notify::new(),
            timer_wake: Notify::new(),
            closed_tx: watch::Sender::new(false),
            handler: OnceLock::new(),
        });
        {
            let mut conns = self.conns();
            let from_address = conns.by_address.get(&address).copied().unwrap_or(0);
            let per_address = cfg.max_sessions_per_address;
            if (per_address > 0 && from_address >= per_address)
                || conns.by_sid.len() >= cfg.max_sessions
            {
                return Err(OpenError::Full);
            }
            conns.by_address.insert(address, from_address + 1);
            conns.by_sid.insert(sid, conn.clone());
        }
        let handler = self.handler.open(&conn);
        let _ = conn.handler.set(handler);
        tokio::spawn(conn.clone().run_timer());
        Ok(conn)
    }

    /// Looks a session up by sid.
    pub(crate) fn get(&self, sid: &str) -> Option<Arc<Conn>> {
        self.conns().by_sid.get(&Str::from(sid)).cloned()
    }

    fn remove(&self, sid: &Str) {
        let mut conns = self.conns();
        let Some(conn) = conns.by_sid.remove(sid) else {
            return;
        };
        if let Some(n) = conns.by_address.get_mut(&conn.address) {
            *n -= 1;
            if *n == 0 {
                conns.by_address.remove(&conn.address);
            }
        }
    }

    /// Number of open sessions.
    pub fn len(&self) -> usize {
        self.conns().by_sid.len()
    }

    /// True when no session is open.
    pub fn is_empty(&self) -> bool {
        self.conns().by_sid.is_empty()
    }

    /// Closes every session (server shutdown).
    pub fn close_all(&self, reason: CloseReason) {
        let conns: Vec<_> = self.conns().by_sid.values().cloned().collect();
        for conn in conns {
            conn.close(reason);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn corking_nests_and_a_panic_inside_leaves_the_thread_uncorked() {
        corked(|| {
            corked(|| assert!(CORKED.get()));
            assert!(
                CORKED.get(),
                "the inner scope must not uncork the outer one"
            );
        });
        assert!(!CORKED.get());
        let panicked = std::panic::catch_unwind(|| corked(|| panic!("a handler's bug")));
        assert!(panicked.is_err());
        assert!(!CORKED.get());
    }
}
