//! The server side of one Engine.IO v4 session, as a sans-IO state machine.
//!
//! A [`Session`] owns the transport state (polling, upgrading, WebSocket, closed), the
//! heartbeat, the upgrade probe, the close reason and the control packets owed to the client.
//! It owns no socket, no timer and no application queue: the server feeds it what arrived and
//! when, and takes what it decided. `server/engine.rs`, `server/polling.rs` and `server/websocket.rs` are the real loop.
//!
//! # Driving loop
//!
//! ```text
//! let mut s = Session::new(sid, TransportKind::Polling, cfg, Instant::now());
//! loop {
//!     // 1. Outputs, after every input.
//!     //    Control packets (open, ping, 3probe, noop, close) wait in the session until their
//!     //    transport can carry them: a GET response takes `poll_transmit_for(Polling)`, the
//!     //    WebSocket writer `poll_transmit_for(WebSocket)`.
//!     while let Some(e) = s.poll_event() {
//!         match e {
//!             SessionEvent::Text(s) | SessionEvent::Binary(b) => feed the Socket.IO decoder,
//!             SessionEvent::Upgraded => write the application queue to the WebSocket from now on
//!                                (and refuse a GET still pending),
//!             SessionEvent::UpgradeAborted => close the candidate WebSocket,
//!             SessionEvent::Closed(reason) => tell the application; forget the session once
//!                                      `has_transmit(Polling)` is false (a close owed to the
//!                                      next poll keeps it reachable until then),
//!         }
//!     }
//!     let deadline = s.poll_timeout();   // ping, pong deadline, upgrade timeout, noop, linger
//!     // 2. Inputs: whichever comes first.
//!     select! {
//!         GET arrived      => s.handle_poll_request(now)?    (Err → answer 400)
//!         GET answered     => s.handle_poll_done(),  (aborted by the peer → s.handle_poll_aborted(now))
//!         POST arrived     => s.handle_post_request(now)?    (Err → answer 400)
//!         POST body read   => s.handle_polling_body(body, now)?  (Err → answer 400)
//!         POST body failed => s.handle_post_aborted(too_large, now)
//!         WS attach (sid)  => s.handle_ws_attach(now)?       (Err → refuse the WebSocket)
//!         WS frame         => s.handle_ws_frame(frame, now),
//!         WS gone          => s.handle_ws_closed(error, now),
//!         sleep_until(deadline) => s.handle_timeout(now),
//!         app wants close  => s.close(CloseReason::ForcedClose, now),
//!     }
//! }
//! ```
//!
//! Application messages do not pass through the session: the server keeps them in its
//! per-connection queue and writes them to [`Session::transport`] (polling until
//! [`SessionEvent::Upgraded`], then the WebSocket) after the session's control packets, except a
//! close: that goes last, once the queue is flushed ([`CloseReason::flushes_queue`]) or
//! discarded.

use super::handshake::Handshake;
use super::packet::{Packet, WsFrame};
use super::payload::{PayloadError, payload_packets};
use super::str::Str;
use bytes::Bytes;
use std::collections::VecDeque;
use std::fmt;
use std::time::{Duration, Instant};

/// The two Engine.IO transports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransportKind {
    /// HTTP long-polling (GET to receive, POST to send).
    Polling,
    /// One WebSocket, one packet per frame.
    WebSocket,
}

impl TransportKind {
    /// The `transport` query parameter value.
    pub fn as_str(self) -> &'static str {
        match self {
            TransportKind::Polling => "polling",
            TransportKind::WebSocket => "websocket",
        }
    }
}

/// Why a session ended. [`CloseReason::as_str`] gives the reference implementation's wording.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseReason {
    /// The client closed the session (close packet) or its WebSocket closed cleanly.
    TransportClose,
    /// The transport failed: WebSocket error, aborted or duplicate poll or POST.
    TransportError,
    /// No pong within `pingTimeout` after a ping.
    PingTimeout,
    /// The client sent something that is not Engine.IO.
    ParseError,
    /// The application closed the session.
    ForcedClose,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The server's bounded outgoing queue for this session overflowed: the client cannot keep
    /// up (the reference server has no bound, hence no wording of its own).
    QueueOverflow,
}

impl CloseReason {
    /// The reason string used by the reference server (`"ping timeout"`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            CloseReason::TransportClose => "transport close",
            CloseReason::TransportError => "transport error",
            CloseReason::PingTimeout => "ping timeout",
            CloseReason::ParseError => "parse error",
            CloseReason::ForcedClose => "forced close",
            CloseReason::ServerShuttingDown => "server shutting down",
            CloseReason::QueueOverflow => "queue overflow",
        }
    }

    /// True when what the application queued is still delivered before the close, as the
    /// reference server waits for its write buffer to drain on a close it decided. Every other
    /// close discards the queue.
    pub fn flushes_queue(self) -> bool {
        matches!(
            self,
            CloseReason::ForcedClose | CloseReason::ServerShuttingDown
        )
    }
}

impl fmt::Display for CloseReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where the session stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Long-polling, no upgrade in progress.
    Polling,
    /// A WebSocket is attached for an upgrade; waiting for `2probe`.
    Probing,
    /// `3probe` sent; waiting for `5` on the WebSocket. Polls are released with a noop.
    Upgrading,
    /// On the WebSocket (directly or after an upgrade).
    WebSocket,
    /// Ended; see [`Session::close_reason`].
    Closed,
}

/// Session parameters (the handshake values and local limits).
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// Time between server pings (`pingInterval`, default 25 s).
    pub ping_interval: Duration,
    /// Time the client has to answer a ping (`pingTimeout`, default 20 s). Also how long a
    /// closed polling session waits for the poll that collects its close.
    pub ping_timeout: Duration,
    /// Largest POST body / WebSocket message accepted (`maxPayload`, default 1 MB).
    pub max_payload: usize,
    /// Time allowed between a WebSocket attaching for an upgrade and its `5` (default 10 s).
    pub upgrade_timeout: Duration,
    /// How long a poll arriving during an upgrade is held before it is released with a noop
    /// (default 100 ms, the reference server's upgrade check): long enough that a client
    /// still finishing the probe does not spin on empty polls.
    pub upgrade_noop_delay: Duration,
}

impl Default for SessionConfig {
    fn default() -> Self {
        SessionConfig {
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            upgrade_timeout: Duration::from_secs(10),
            upgrade_noop_delay: Duration::from_millis(100),
        }
    }
}

/// A packet the session wants sent, and on which transport.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transmit {
    /// The transport to send on. For polling: the pending (or next) GET response.
    pub transport: TransportKind,
    /// The control packet (open, ping, pong probe, noop, close). On a WebSocket a close is
    /// said with the WebSocket close frame, as the reference server does, not a `1` message.
    pub packet: Packet,
}

/// Something the application (or the server loop) must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// A text message from the client.
    Text(Str),
    /// A binary message from the client.
    Binary(Bytes),
    /// The upgrade completed: write everything to the WebSocket from now on. A GET still
    /// pending is refused (answer 400), like any later one.
    Upgraded,
    /// The upgrade failed (bad probe, timeout, WebSocket gone, session closed): close the
    /// candidate WebSocket; a live session stays on polling.
    UpgradeAborted,
    /// The session ended. A close owed to a polling client stays queued for its next poll
    /// (see [`Session::has_transmit`]) until `pingTimeout` passes; drop the session after that.
    Closed(CloseReason),
}

/// Why the server must refuse an HTTP request or WebSocket for this session (answer 400 /
/// close that socket). The session itself may have closed as a consequence: watch for
/// [`SessionEvent::Closed`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RequestError {
    /// The session is closed (treat like an unknown sid).
    #[error("session closed")]
    Closed,
    /// The request does not fit the current transport (e.g. a poll after the upgrade).
    #[error("wrong transport for this session")]
    WrongTransport,
    /// A second GET while one is pending (the session closes with a transport error).
    #[error("duplicate poll request")]
    DuplicatePoll,
    /// A second POST while one is being read (the session closes with a transport error).
    #[error("overlapping POST requests")]
    DuplicatePost,
    /// A second WebSocket while one is attached or upgrading.
    #[error("upgrade already in progress")]
    UpgradeInProgress,
    /// The POST body was rejected (the session closes with a parse error).
    #[error(transparent)]
    Payload(#[from] PayloadError),
}

/// One Engine.IO session, server side. See the module docs for the driving loop.
#[derive(Debug)]
pub struct Session {
    sid: Str,
    config: SessionConfig,
    state: State,
    close_reason: Option<CloseReason>,
    poll_pending: bool,
    post_pending: bool,
    /// When the next ping is due (None while waiting for a pong).
    next_ping: Option<Instant>,
    /// When the session dies unless a pong arrives (None while no ping is outstanding).
    pong_deadline: Option<Instant>,
    /// When an attached-but-unfinished upgrade is abandoned.
    upgrade_deadline: Option<Instant>,
    /// When a poll held during the upgrade is released with a noop.
    noop_at: Option<Instant>,
    /// Until when a closed session keeps the close it owes a polling client.
    linger_deadline: Option<Instant>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<SessionEvent>,
}

impl Session {
    /// A new session opened on `transport` at `now`. Its first transmit is the OPEN packet.
    pub fn new(sid: Str, transport: TransportKind, config: SessionConfig, now: Instant) -> Session {
        let handshake = Handshake {
            sid: sid.to_string(),
            upgrades: match transport {
                TransportKind::Polling => vec!["websocket".to_owned()],
                TransportKind::WebSocket => Vec::new(),
            },
            ping_interval: duration_ms(config.ping_interval),
            ping_timeout: duration_ms(config.ping_timeout),
            max_payload: config.max_payload as u64,
        };
        let mut transmits = VecDeque::with_capacity(4);
        transmits.push_back(Transmit {
            transport,
            packet: Packet::Open(Str::from(handshake.to_json())),
        });
        Session {
            sid,
            state: match transport {
                TransportKind::Polling => State::Polling,
                TransportKind::WebSocket => State::WebSocket,
            },
            close_reason: None,
            poll_pending: false,
            post_pending: false,
            next_ping: Some(now + config.ping_interval),
            pong_deadline: None,
            upgrade_deadline: None,
            noop_at: None,
            linger_deadline: None,
            config,
            transmits,
            events: VecDeque::new(),
        }
    }

    /// The session id.
    pub fn sid(&self) -> &Str {
        &self.sid
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The configuration the session was created with.
    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// Where application messages go now: polling until the upgrade completes, then WebSocket.
    /// `None` once closed.
    pub fn transport(&self) -> Option<TransportKind> {
        match self.state {
            State::Polling | State::Probing | State::Upgrading => Some(TransportKind::Polling),
            State::WebSocket => Some(TransportKind::WebSocket),
            State::Closed => None,
        }
    }

    /// True once the session has ended.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// Why the session ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.close_reason
    }

    /// True while a long-polling GET is waiting for data.
    pub fn poll_pending(&self) -> bool {
        self.poll_pending
    }

    /// A GET arrived. On `Ok` the request is now the pending poll: answer it with the polling
    /// transmits and queued messages as soon as there are any, then call
    /// [`Session::handle_poll_done`]. On `Err` answer 400. A closed session still accepts the
    /// one poll that collects the close it owes.
    pub fn handle_poll_request(&mut self, now: Instant) -> Result<(), RequestError> {
        match self.state {
            State::Closed if self.poll_pending || !self.has_transmit(TransportKind::Polling) => {
                return Err(RequestError::Closed);
            }
            State::Closed | State::Polling | State::Probing => {}
            State::Upgrading => self.noop_at = Some(now + self.config.upgrade_noop_delay),
            State::WebSocket => return Err(RequestError::WrongTransport),
        }
        if self.poll_pending {
            // The first poll receives the close packet; the second gets the error.
            self.close_with_packet(CloseReason::TransportError, now);
            return Err(RequestError::DuplicatePoll);
        }
        self.poll_pending = true;
        Ok(())
    }

    /// The pending GET has been answered.
    pub fn handle_poll_done(&mut self) {
        self.poll_pending = false;
        self.noop_at = None;
    }

    /// The client went away while its GET was pending: the session ends with a transport
    /// error (a closed one forgets the close it kept for that client).
    pub fn handle_poll_aborted(&mut self, now: Instant) {
        self.poll_pending = false;
        self.noop_at = None;
        match self.state {
            State::Polling | State::Probing | State::Upgrading => {
                self.close_inner(CloseReason::TransportError, None, now)
            }
            State::Closed => self.drop_transmits(TransportKind::Polling),
            State::WebSocket => {}
        }
    }

    /// A POST arrived (before its body is read). On `Err` answer 400; on `Ok` read the body and
    /// call [`Session::handle_polling_body`] or [`Session::handle_post_aborted`].
    pub fn handle_post_request(&mut self, now: Instant) -> Result<(), RequestError> {
        match self.state {
            State::Closed => return Err(RequestError::Closed),
            State::WebSocket => return Err(RequestError::WrongTransport),
            State::Polling | State::Probing | State::Upgrading => {}
        }
        if self.post_pending {
            self.close_with_packet(CloseReason::TransportError, now);
            return Err(RequestError::DuplicatePost);
        }
        self.post_pending = true;
        Ok(())
    }

    /// A POST body arrived. On `Err` answer 400 (the session has closed with a parse error);
    /// on `Ok` answer `ok`.
    pub fn handle_polling_body(&mut self, body: Bytes, now: Instant) -> Result<(), RequestError> {
        self.post_pending = false;
        match self.state {
            State::Closed => return Err(RequestError::Closed),
            State::WebSocket => return Err(RequestError::WrongTransport),
            State::Polling | State::Probing | State::Upgrading => {}
        }
        // Packets are handled as they decode, as the reference server does; the first bad one
        // closes the session.
        let decoded = payload_packets(body, self.config.max_payload).and_then(|packets| {
            for p in packets {
                if self.state == State::Closed {
                    break;
                }
                self.handle_packet(p?, TransportKind::Polling, now);
            }
            Ok(())
        });
        if let Err(e) = decoded {
            self.close_with_packet(CloseReason::ParseError, now);
            return Err(e.into());
        }
        Ok(())
    }

    /// Reading a POST body failed: it exceeded `maxPayload` (`too_large`, the session closes
    /// with a parse error; answer 413) or the client went away (transport error).
    pub fn handle_post_aborted(&mut self, too_large: bool, now: Instant) {
        self.post_pending = false;
        if matches!(
            self.state,
            State::Polling | State::Probing | State::Upgrading
        ) {
            let reason = if too_large {
                CloseReason::ParseError
            } else {
                CloseReason::TransportError
            };
            self.close_with_packet(reason, now);
        }
    }

    /// A WebSocket arrived with this session's sid, to upgrade. On `Err` refuse it.
    pub fn handle_ws_attach(&mut self, now: Instant) -> Result<(), RequestError> {
        match self.state {
            State::Polling => {
                self.state = State::Probing;
                self.upgrade_deadline = Some(now + self.config.upgrade_timeout);
                Ok(())
            }
            State::Probing | State::Upgrading => Err(RequestError::UpgradeInProgress),
            State::WebSocket => Err(RequestError::WrongTransport),
            State::Closed => Err(RequestError::Closed),
        }
    }

    /// A frame arrived on the session's WebSocket (the upgrade candidate or the upgraded one).
    pub fn handle_ws_frame(&mut self, frame: WsFrame, now: Instant) {
        let len = match &frame {
            WsFrame::Text(t) => t.len(),
            WsFrame::Binary(b) => b.len(),
        };
        let packet = if len > self.config.max_payload {
            None
        } else {
            Packet::from_ws(frame).ok()
        };
        match self.state {
            State::Closed | State::Polling => {}
            State::WebSocket => match packet {
                Some(p) => self.handle_packet(p, TransportKind::WebSocket, now),
                None => self.close_inner(CloseReason::ParseError, None, now),
            },
            State::Probing => match packet {
                Some(Packet::PingProbe) => {
                    self.transmit(TransportKind::WebSocket, Packet::PongProbe);
                    self.state = State::Upgrading;
                    // Release a pending poll at once, so that the client can pause polling.
                    if self.poll_pending {
                        self.transmit(TransportKind::Polling, Packet::Noop);
                    }
                }
                _ => self.abort_upgrade(),
            },
            State::Upgrading => match packet {
                Some(Packet::Upgrade) => {
                    self.state = State::WebSocket;
                    self.upgrade_deadline = None;
                    self.noop_at = None;
                    // What polling still owed: a ping moves to the WebSocket, noops are moot.
                    self.transmits
                        .retain_mut(|t| match (t.transport, &t.packet) {
                            (TransportKind::Polling, Packet::Ping) => {
                                t.transport = TransportKind::WebSocket;
                                true
                            }
                            (TransportKind::Polling, _) => false,
                            (TransportKind::WebSocket, _) => true,
                        });
                    self.events.push_back(SessionEvent::Upgraded);
                }
                Some(Packet::PingProbe) => {
                    self.transmit(TransportKind::WebSocket, Packet::PongProbe);
                }
                _ => self.abort_upgrade(),
            },
        }
    }

    /// The session's WebSocket closed (`error`: it failed rather than closed cleanly). During an
    /// upgrade this only abandons the upgrade.
    pub fn handle_ws_closed(&mut self, error: bool, now: Instant) {
        match self.state {
            State::Probing | State::Upgrading => self.abort_upgrade(),
            State::WebSocket => {
                let reason = if error {
                    CloseReason::TransportError
                } else {
                    CloseReason::TransportClose
                };
                self.close_inner(reason, None, now)
            }
            State::Polling | State::Closed => {}
        }
    }

    /// Time passed: sends pings, enforces the pong deadline, the upgrade timeout, the release
    /// of a poll held during the upgrade, and the end of a closed session's wait for its poll.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            if self.linger_deadline.is_some_and(|d| now >= d) {
                self.linger_deadline = None;
                self.drop_transmits(TransportKind::Polling);
            }
            return;
        }
        if let Some(due) = self.next_ping.filter(|&d| now >= d) {
            self.next_ping = None;
            // The pong deadline follows the schedule, not this (possibly late) call: a late
            // timer must not keep a dead session alive.
            self.pong_deadline = Some(due + self.config.ping_timeout);
            if let Some(t) = self.transport() {
                self.transmit(t, Packet::Ping);
            }
        }
        if self.pong_deadline.is_some_and(|d| now >= d) {
            self.close_with_packet(CloseReason::PingTimeout, now);
            return;
        }
        if self.upgrade_deadline.is_some_and(|d| now >= d) {
            self.abort_upgrade();
        }
        if self.noop_at.is_some_and(|d| now >= d) {
            self.noop_at = None;
            if self.poll_pending && self.state == State::Upgrading {
                self.transmit(TransportKind::Polling, Packet::Noop);
            }
        }
    }

    /// Ends the session from the server side (`ForcedClose`, `ServerShuttingDown`, …): a close
    /// packet is queued for the client, then [`SessionEvent::Closed`]. On polling, a close that
    /// [flushes the queue](CloseReason::flushes_queue) waits for the client's next poll when
    /// none is pending; any other reaches only a pending poll.
    pub fn close(&mut self, reason: CloseReason, now: Instant) {
        if reason.flushes_queue() {
            let last = self.transport().map(|t| (t, Packet::Close));
            self.close_inner(reason, last, now);
        } else {
            self.close_with_packet(reason, now);
        }
    }

    /// The next packet to send, with its transport.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// True when a transmit for `transport` is queued (a pending poll can be answered).
    pub fn has_transmit(&self, transport: TransportKind) -> bool {
        self.transmits.iter().any(|t| t.transport == transport)
    }

    /// The next transmit for `transport`, without removing it (e.g. to hold a close back until
    /// the application queue is flushed).
    pub fn peek_transmit_for(&self, transport: TransportKind) -> Option<&Transmit> {
        self.transmits.iter().find(|t| t.transport == transport)
    }

    /// Removes and returns the next transmit for `transport` only (e.g. to fill a GET response
    /// while an upgrade probe waits for the WebSocket).
    pub fn poll_transmit_for(&mut self, transport: TransportKind) -> Option<Transmit> {
        let i = self
            .transmits
            .iter()
            .position(|t| t.transport == transport)?;
        self.transmits.remove(i)
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When to call [`Session::handle_timeout`] next. `None` once closed, unless a close is
    /// still owed to a polling client (then: when to stop waiting for its poll).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return self
                .linger_deadline
                .filter(|_| self.has_transmit(TransportKind::Polling));
        }
        [
            self.next_ping,
            self.pong_deadline,
            self.upgrade_deadline,
            self.noop_at,
        ]
        .into_iter()
        .flatten()
        .min()
    }

    fn handle_packet(&mut self, packet: Packet, from: TransportKind, now: Instant) {
        match packet {
            Packet::Message(s) => self.events.push_back(SessionEvent::Text(s)),
            Packet::Binary(b) => self.events.push_back(SessionEvent::Binary(b)),
            Packet::Pong => {
                if self.pong_deadline.take().is_some() {
                    self.next_ping = Some(now + self.config.ping_interval);
                }
            }
            Packet::Close => {
                // The reference server answers a polling client's close with a noop (on the
                // pending poll, or the next one).
                let last = (from == TransportKind::Polling).then_some((from, Packet::Noop));
                self.close_inner(CloseReason::TransportClose, last, now);
            }
            // Ignored, as by the reference server (a stray `5` after the upgrade is harmless).
            Packet::Noop | Packet::Upgrade => {}
            // Not valid from a v4 client on an established transport.
            Packet::Open(_) | Packet::Ping | Packet::PingProbe | Packet::PongProbe => {
                self.close_with_packet(CloseReason::ParseError, now)
            }
        }
    }

    fn abort_upgrade(&mut self) {
        if matches!(self.state, State::Probing | State::Upgrading) {
            self.state = State::Polling;
            self.upgrade_deadline = None;
            self.noop_at = None;
            // Drop a queued 3probe that never went out.
            self.drop_transmits(TransportKind::WebSocket);
            self.events.push_back(SessionEvent::UpgradeAborted);
        }
    }

    fn transmit(&mut self, transport: TransportKind, packet: Packet) {
        self.transmits.push_back(Transmit { transport, packet });
    }

    fn drop_transmits(&mut self, transport: TransportKind) {
        self.transmits.retain(|t| t.transport != transport);
    }

    /// Closes because of the client or the transport. The client is told with a close packet
    /// where it can still be reached: on the WebSocket, or the pending poll (the reference
    /// server does not wait for another one).
    fn close_with_packet(&mut self, reason: CloseReason, now: Instant) {
        let last = match self.transport() {
            Some(TransportKind::Polling) if !self.poll_pending => None,
            t => t.map(|t| (t, Packet::Close)),
        };
        self.close_inner(reason, last, now);
    }

    /// Ends the session; `last` is the one packet still owed to the client.
    fn close_inner(
        &mut self,
        reason: CloseReason,
        last: Option<(TransportKind, Packet)>,
        now: Instant,
    ) {
        if self.state == State::Closed {
            return;
        }
        if matches!(self.state, State::Probing | State::Upgrading) {
            self.events.push_back(SessionEvent::UpgradeAborted);
        }
        self.state = State::Closed;
        self.close_reason = Some(reason);
        self.next_ping = None;
        self.pong_deadline = None;
        self.upgrade_deadline = None;
        self.noop_at = None;
        // Nothing but the last word is owed once closed (an uncollected ping, a 3probe).
        self.transmits.clear();
        if let Some((transport, packet)) = last {
            if transport == TransportKind::Polling {
                self.linger_deadline = Some(now + self.config.ping_timeout);
            }
            self.transmit(transport, packet);
        }
        self.events.push_back(SessionEvent::Closed(reason));
    }
}

fn duration_ms(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    fn cfg() -> SessionConfig {
        SessionConfig {
            ping_interval: 300 * MS,
            ping_timeout: 200 * MS,
            max_payload: 1_000_000,
            upgrade_timeout: 1000 * MS,
            upgrade_noop_delay: 100 * MS,
        }
    }

    fn drain(s: &mut Session) -> (Vec<Transmit>, Vec<SessionEvent>) {
        (
            std::iter::from_fn(|| s.poll_transmit()).collect(),
            std::iter::from_fn(|| s.poll_event()).collect(),
        )
    }

    /// A closed session that owes nothing more: no deadline, every request refused.
    fn assert_finished(s: &mut Session, now: Instant) {
        assert!(s.is_closed());
        assert!(!s.has_transmit(TransportKind::Polling));
        assert_eq!(s.poll_timeout(), None);
        assert_eq!(s.handle_poll_request(now), Err(RequestError::Closed));
        assert_eq!(s.handle_post_request(now), Err(RequestError::Closed));
        assert_eq!(s.handle_ws_attach(now), Err(RequestError::Closed));
    }

    fn drain_events(s: &mut Session) -> Vec<SessionEvent> {
        std::iter::from_fn(|| s.poll_event()).collect()
    }

    fn tx(transport: TransportKind, packet: Packet) -> Transmit {
        Transmit { transport, packet }
    }

    fn text(s: &'static str) -> WsFrame {
        WsFrame::Text(Str::from_static(s))
    }

    fn new_polling(t0: Instant) -> Session {
        let mut s = Session::new(Str::from("abc"), TransportKind::Polling, cfg(), t0);
        let (t, e) = drain(&mut s);
        assert_eq!(t.len(), 1);
        assert!(e.is_empty());
        s
    }

    #[test]
    fn open_packet_is_first_transmit() {
        let t0 = Instant::now();
        let mut s = Session::new(Str::from("abc"), TransportKind::Polling, cfg(), t0);
        assert_eq!(
            s.poll_transmit(),
            Some(tx(
                TransportKind::Polling,
                Packet::Open(Str::from(
                    r#"{"sid":"abc","upgrades":["websocket"],"pingInterval":300,"pingTimeout":200,"maxPayload":1000000}"#
                ))
            ))
        );
        let mut w = Session::new(Str::from("x"), TransportKind::WebSocket, cfg(), t0);
        let Some(Transmit {
            transport: TransportKind::WebSocket,
            packet: Packet::Open(json),
        }) = w.poll_transmit()
        else {
            panic!("no open packet")
        };
        assert!(json.contains(r#""upgrades":[]"#));
        assert_eq!(w.transport(), Some(TransportKind::WebSocket));
    }

    #[test]
    fn heartbeat_timeout_fires_exactly_at_interval_plus_timeout() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        assert_eq!(s.poll_timeout(), Some(t0 + 300 * MS));
        s.handle_timeout(t0 + 299 * MS);
        assert_eq!(drain(&mut s), (vec![], vec![]));
        s.handle_timeout(t0 + 300 * MS);
        assert_eq!(
            drain(&mut s),
            (vec![tx(TransportKind::Polling, Packet::Ping)], vec![])
        );
        assert_eq!(s.poll_timeout(), Some(t0 + 500 * MS));
        s.handle_timeout(t0 + 499 * MS);
        assert!(!s.is_closed());
        s.handle_timeout(t0 + 500 * MS);
        // No poll pending: nobody to tell, nothing kept for a later poll.
        assert_eq!(
            drain(&mut s),
            (vec![], vec![SessionEvent::Closed(CloseReason::PingTimeout)])
        );
        assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
        assert_finished(&mut s, t0 + 501 * MS);
    }

    #[test]
    fn pong_reschedules_next_ping_from_pong_time() {
        let t0 = Instant::now();
        let mut s = Session::new(Str::from("a"), TransportKind::WebSocket, cfg(), t0);
        drain(&mut s);
        for round in 0..3u32 {
            let base = t0 + round * 400 * MS;
            s.handle_timeout(base + 300 * MS);
            assert_eq!(
                drain(&mut s).0,
                vec![tx(TransportKind::WebSocket, Packet::Ping)]
            );
            s.handle_ws_frame(text("3"), base + 400 * MS);
            assert_eq!(s.poll_timeout(), Some(base + 700 * MS));
        }
        // An unsolicited pong changes nothing.
        s.handle_ws_frame(text("3"), t0 + 1250 * MS);
        assert_eq!(s.poll_timeout(), Some(t0 + 1500 * MS));
        assert!(!s.is_closed());
    }

    #[test]
    fn messages_become_events() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_polling_body(Bytes::from_static(b"4hello\x1ebAQIDBA==\x1e6"), t0)
            .unwrap();
        assert_eq!(
            drain(&mut s).1,
            vec![
                SessionEvent::Text(Str::from("hello")),
                SessionEvent::Binary(Bytes::from_static(&[1, 2, 3, 4]))
            ]
        );
    }

    #[test]
    fn invalid_post_closes_with_parse_error() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        assert!(matches!(
            s.handle_polling_body(Bytes::from_static(b"abc"), t0),
            Err(RequestError::Payload(_))
        ));
        assert_eq!(s.close_reason(), Some(CloseReason::ParseError));
        assert_eq!(
            s.handle_polling_body(Bytes::from_static(b"4x"), t0),
            Err(RequestError::Closed)
        );
    }

    #[test]
    fn oversized_post_and_frame_are_rejected() {
        let t0 = Instant::now();
        let mut c = cfg();
        c.max_payload = 4;
        let mut s = Session::new(Str::from("a"), TransportKind::Polling, c.clone(), t0);
        assert!(matches!(
            s.handle_polling_body(Bytes::from_static(b"4hello"), t0),
            Err(RequestError::Payload(PayloadError::TooLarge { .. }))
        ));
        assert!(s.is_closed());
        let mut w = Session::new(Str::from("a"), TransportKind::WebSocket, c, t0);
        w.handle_ws_frame(WsFrame::Binary(Bytes::from_static(b"12345")), t0);
        assert_eq!(w.close_reason(), Some(CloseReason::ParseError));
    }

    #[test]
    fn malformed_ws_frame_closes() {
        let t0 = Instant::now();
        let mut s = Session::new(Str::from("a"), TransportKind::WebSocket, cfg(), t0);
        drain(&mut s);
        s.handle_ws_frame(text("abc"), t0);
        assert_eq!(
            drain(&mut s),
            (vec![], vec![SessionEvent::Closed(CloseReason::ParseError)])
        );
    }

    #[test]
    fn duplicate_poll_closes_session_and_first_poll_gets_close() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_poll_request(t0).unwrap();
        assert_eq!(s.handle_poll_request(t0), Err(RequestError::DuplicatePoll));
        assert_eq!(
            drain(&mut s),
            (
                vec![tx(TransportKind::Polling, Packet::Close)],
                vec![SessionEvent::Closed(CloseReason::TransportError)]
            )
        );
    }

    #[test]
    fn aborted_poll_closes_with_transport_error() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_poll_request(t0).unwrap();
        s.handle_poll_aborted(t0);
        assert_eq!(
            drain(&mut s).1,
            vec![SessionEvent::Closed(CloseReason::TransportError)]
        );
    }

    #[test]
    fn client_close_over_polling_is_answered_with_a_noop() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_poll_request(t0).unwrap();
        s.handle_polling_body(Bytes::from_static(b"1"), t0).unwrap();
        assert_eq!(
            drain(&mut s),
            (
                vec![tx(TransportKind::Polling, Packet::Noop)],
                vec![SessionEvent::Closed(CloseReason::TransportClose)]
            )
        );
        // Without a pending poll, the noop waits for the next one.
        let mut s = new_polling(t0);
        s.handle_post_request(t0).unwrap();
        s.handle_polling_body(Bytes::from_static(b"1"), t0).unwrap();
        assert!(s.is_closed());
        s.handle_poll_request(t0).unwrap();
        assert_eq!(
            s.poll_transmit_for(TransportKind::Polling),
            Some(tx(TransportKind::Polling, Packet::Noop))
        );
        s.handle_poll_done();
        assert_finished(&mut s, t0);
    }

    #[test]
    fn upgrade_sequence_with_noop_release() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_poll_request(t0).unwrap();
        s.handle_ws_attach(t0).unwrap();
        assert_eq!(s.state(), State::Probing);
        assert_eq!(s.handle_ws_attach(t0), Err(RequestError::UpgradeInProgress));
        s.handle_ws_frame(text("2probe"), t0);
        assert_eq!(s.state(), State::Upgrading);
        assert_eq!(s.transport(), Some(TransportKind::Polling));
        assert_eq!(
            drain(&mut s).0,
            vec![
                tx(TransportKind::WebSocket, Packet::PongProbe),
                tx(TransportKind::Polling, Packet::Noop)
            ]
        );
        s.handle_poll_done();
        // A poll during the upgrade is held, then released with a noop.
        s.handle_poll_request(t0 + 10 * MS).unwrap();
        assert_eq!(s.poll_timeout(), Some(t0 + 110 * MS));
        s.handle_timeout(t0 + 109 * MS);
        assert!(!s.has_transmit(TransportKind::Polling));
        s.handle_timeout(t0 + 110 * MS);
        assert_eq!(
            drain(&mut s).0,
            vec![tx(TransportKind::Polling, Packet::Noop)]
        );
        s.handle_poll_done();
        assert_eq!(s.poll_timeout(), Some(t0 + 300 * MS));
        // A poll still held when the upgrade completes gets nothing (the server refuses it).
        s.handle_poll_request(t0 + 120 * MS).unwrap();
        s.handle_ws_frame(text("5"), t0 + 130 * MS);
        assert_eq!(drain(&mut s), (vec![], vec![SessionEvent::Upgraded]));
        s.handle_timeout(t0 + 220 * MS);
        assert!(!s.has_transmit(TransportKind::Polling));
        s.handle_poll_done();
        assert_eq!(s.transport(), Some(TransportKind::WebSocket));
        s.handle_ws_frame(text("4hello"), t0);
        assert_eq!(
            drain(&mut s).1,
            vec![SessionEvent::Text(Str::from("hello"))]
        );
        // HTTP requests and second WebSockets are refused after the upgrade.
        assert_eq!(s.handle_poll_request(t0), Err(RequestError::WrongTransport));
        assert_eq!(s.handle_ws_attach(t0), Err(RequestError::WrongTransport));
        assert!(!s.is_closed());
        // Pings now go over the WebSocket.
        s.handle_timeout(t0 + 300 * MS);
        assert_eq!(
            drain(&mut s).0,
            vec![tx(TransportKind::WebSocket, Packet::Ping)]
        );
    }

    #[test]
    fn bad_probe_aborts_upgrade_only() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_ws_attach(t0).unwrap();
        s.handle_ws_frame(text("4hello"), t0);
        assert_eq!(drain(&mut s), (vec![], vec![SessionEvent::UpgradeAborted]));
        assert_eq!(s.state(), State::Polling);
        // A fresh attempt may follow.
        s.handle_ws_attach(t0).unwrap();
        s.handle_ws_frame(text("2probe"), t0);
        s.handle_ws_closed(false, t0);
        assert_eq!(drain(&mut s).1, vec![SessionEvent::UpgradeAborted]);
        assert_eq!(s.state(), State::Polling);
        assert!(!s.is_closed());
    }

    #[test]
    fn upgrade_times_out() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_ws_attach(t0 + 100 * MS).unwrap();
        // Ping at 300 comes first.
        assert_eq!(s.poll_timeout(), Some(t0 + 300 * MS));
        s.handle_timeout(t0 + 300 * MS);
        s.handle_ws_frame(text("3"), t0 + 310 * MS); // a pong on the candidate aborts it
        assert_eq!(drain(&mut s).1, vec![SessionEvent::UpgradeAborted]);
        s.handle_polling_body(Bytes::from_static(b"3"), t0 + 320 * MS)
            .unwrap();
        s.handle_ws_attach(t0 + 400 * MS).unwrap();
        assert_eq!(s.poll_timeout(), Some(t0 + 620 * MS));
        s.handle_timeout(t0 + 620 * MS); // next ping
        drain(&mut s);
        s.handle_polling_body(Bytes::from_static(b"3"), t0 + 630 * MS)
            .unwrap();
        assert_eq!(s.poll_timeout(), Some(t0 + 930 * MS));
        s.handle_timeout(t0 + 930 * MS);
        s.handle_polling_body(Bytes::from_static(b"3"), t0 + 940 * MS)
            .unwrap();
        s.handle_timeout(t0 + 1240 * MS);
        s.handle_polling_body(Bytes::from_static(b"3"), t0 + 1250 * MS)
            .unwrap();
        drain(&mut s);
        assert_eq!(s.poll_timeout(), Some(t0 + 1400 * MS));
        s.handle_timeout(t0 + 1400 * MS);
        assert_eq!(drain(&mut s).1, vec![SessionEvent::UpgradeAborted]);
        assert_eq!(s.state(), State::Polling);
    }

    #[test]
    fn forced_close_and_ws_close_reasons() {
        let t0 = Instant::now();
        let mut s = Session::new(Str::from("a"), TransportKind::WebSocket, cfg(), t0);
        drain(&mut s);
        s.close(CloseReason::ServerShuttingDown, t0);
        assert_eq!(
            drain(&mut s),
            (
                vec![tx(TransportKind::WebSocket, Packet::Close)],
                vec![SessionEvent::Closed(CloseReason::ServerShuttingDown)]
            )
        );
        // Closing twice reports once.
        s.close(CloseReason::ForcedClose, t0);
        assert_eq!(drain(&mut s), (vec![], vec![]));

        let mut w = Session::new(Str::from("b"), TransportKind::WebSocket, cfg(), t0);
        w.handle_ws_closed(true, t0);
        assert_eq!(w.close_reason(), Some(CloseReason::TransportError));
        let mut w = Session::new(Str::from("c"), TransportKind::WebSocket, cfg(), t0);
        w.handle_ws_frame(text("1"), t0);
        assert_eq!(w.close_reason(), Some(CloseReason::TransportClose));
        assert_eq!(CloseReason::PingTimeout.to_string(), "ping timeout");
    }

    #[test]
    fn close_during_upgrade_aborts_upgrade_too() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_ws_attach(t0).unwrap();
        s.close(CloseReason::ForcedClose, t0);
        assert_eq!(
            drain(&mut s),
            (
                vec![tx(TransportKind::Polling, Packet::Close)],
                vec![
                    SessionEvent::UpgradeAborted,
                    SessionEvent::Closed(CloseReason::ForcedClose)
                ]
            )
        );
    }

    #[test]
    fn poll_transmit_for_filters_by_transport() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_poll_request(t0).unwrap();
        s.handle_ws_attach(t0).unwrap();
        s.handle_ws_frame(text("2probe"), t0);
        assert!(s.has_transmit(TransportKind::Polling));
        assert_eq!(
            s.poll_transmit_for(TransportKind::Polling),
            Some(tx(TransportKind::Polling, Packet::Noop))
        );
        assert!(!s.has_transmit(TransportKind::Polling));
        assert_eq!(
            s.poll_transmit(),
            Some(tx(TransportKind::WebSocket, Packet::PongProbe))
        );
    }

    #[test]
    fn forced_close_over_polling_waits_for_the_next_poll() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.close(CloseReason::ForcedClose, t0 + 10 * MS);
        assert_eq!(
            drain_events(&mut s),
            vec![SessionEvent::Closed(CloseReason::ForcedClose)]
        );
        assert!(s.has_transmit(TransportKind::Polling));
        // Kept for pingTimeout after the close.
        assert_eq!(s.poll_timeout(), Some(t0 + 210 * MS));
        s.handle_poll_request(t0 + 20 * MS).unwrap();
        assert_eq!(
            s.poll_transmit_for(TransportKind::Polling),
            Some(tx(TransportKind::Polling, Packet::Close))
        );
        s.handle_poll_done();
        assert_finished(&mut s, t0 + 30 * MS);
    }

    #[test]
    fn a_close_that_discards_the_queue_does_not_wait_for_a_poll() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.close(CloseReason::ParseError, t0);
        assert_eq!(
            drain(&mut s),
            (vec![], vec![SessionEvent::Closed(CloseReason::ParseError)])
        );
        assert_finished(&mut s, t0);
        // A pending poll still hears of it.
        let mut s = new_polling(t0);
        s.handle_poll_request(t0).unwrap();
        s.close(CloseReason::QueueOverflow, t0);
        let owed = s.peek_transmit_for(TransportKind::Polling);
        assert_eq!(owed.map(|t| &t.packet), Some(&Packet::Close));
        assert_eq!(s.close_reason(), Some(CloseReason::QueueOverflow));
    }

    #[test]
    fn an_uncollected_close_is_forgotten_after_ping_timeout() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.close(CloseReason::ServerShuttingDown, t0);
        s.handle_timeout(t0 + 199 * MS);
        assert!(s.has_transmit(TransportKind::Polling));
        s.handle_timeout(t0 + 200 * MS);
        assert_finished(&mut s, t0 + 201 * MS);
        // A client that gives up its poll forgets it too.
        let mut s = new_polling(t0);
        s.close(CloseReason::ForcedClose, t0);
        s.handle_poll_request(t0).unwrap();
        s.handle_poll_aborted(t0);
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn overlapping_and_failed_posts_close() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_post_request(t0).unwrap();
        assert_eq!(s.handle_post_request(t0), Err(RequestError::DuplicatePost));
        assert_eq!(s.close_reason(), Some(CloseReason::TransportError));
        // Sequential POSTs are fine.
        let mut s = new_polling(t0);
        for _ in 0..3 {
            s.handle_post_request(t0).unwrap();
            s.handle_polling_body(Bytes::from_static(b"4x"), t0)
                .unwrap();
        }
        assert!(!s.is_closed());
        s.handle_post_request(t0).unwrap();
        s.handle_post_aborted(true, t0);
        assert_eq!(s.close_reason(), Some(CloseReason::ParseError));
        let mut s = new_polling(t0);
        s.handle_poll_request(t0).unwrap();
        s.handle_post_request(t0).unwrap();
        s.handle_post_aborted(false, t0);
        assert_eq!(s.close_reason(), Some(CloseReason::TransportError));
        // The pending poll learns about it.
        assert_eq!(
            s.poll_transmit_for(TransportKind::Polling),
            Some(tx(TransportKind::Polling, Packet::Close))
        );
    }

    #[test]
    fn a_ping_owed_to_polling_moves_to_the_websocket_on_upgrade() {
        let t0 = Instant::now();
        let mut s = new_polling(t0);
        s.handle_ws_attach(t0).unwrap();
        s.handle_ws_frame(text("2probe"), t0);
        s.handle_timeout(t0 + 300 * MS);
        assert_eq!(
            s.peek_transmit_for(TransportKind::Polling),
            Some(&tx(TransportKind::Polling, Packet::Ping))
        );
        s.handle_ws_frame(text("5"), t0 + 310 * MS);
        assert_eq!(
            drain(&mut s),
            (
                vec![
                    tx(TransportKind::WebSocket, Packet::PongProbe),
                    tx(TransportKind::WebSocket, Packet::Ping)
                ],
                vec![SessionEvent::Upgraded]
            )
        );
        s.handle_ws_frame(text("3"), t0 + 320 * MS);
        assert_eq!(s.poll_timeout(), Some(t0 + 620 * MS));
        // A stray upgrade packet afterwards is ignored.
        s.handle_ws_frame(text("5"), t0 + 330 * MS);
        assert!(!s.is_closed());
    }

    #[test]
    fn pong_deadline_follows_the_schedule_not_a_late_timer() {
        let t0 = Instant::now();
        let mut s = Session::new(Str::from("a"), TransportKind::WebSocket, cfg(), t0);
        drain(&mut s);
        s.handle_timeout(t0 + 350 * MS);
        assert_eq!(s.poll_timeout(), Some(t0 + 500 * MS));
        // A timer later than interval + timeout closes at once.
        let mut s = Session::new(Str::from("b"), TransportKind::WebSocket, cfg(), t0);
        drain(&mut s);
        s.handle_timeout(t0 + 500 * MS);
        assert_eq!(s.close_reason(), Some(CloseReason::PingTimeout));
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn which_closes_flush_the_queue() {
        use CloseReason::*;
        assert!(ForcedClose.flushes_queue() && ServerShuttingDown.flushes_queue());
        let discarding = [TransportClose, TransportError, PingTimeout, ParseError];
        assert!(!discarding.iter().any(|r| r.flushes_queue()));
        assert!(!QueueOverflow.flushes_queue());
        assert_eq!(QueueOverflow.as_str(), "queue overflow");
        assert_eq!(ServerShuttingDown.as_str(), "server shutting down");
    }

    #[derive(Debug, Clone)]
    enum Input {
        PollRequest,
        PollDone,
        PollAborted,
        Post,
        PostAborted(bool),
        Body(Vec<u8>),
        Attach,
        Frame(bool, Vec<u8>),
        WsClosed(bool),
        Advance(u16),
        Close,
    }

    fn arb_input() -> impl proptest::strategy::Strategy<Value = Input> {
        use proptest::prelude::*;
        let wire = prop_oneof![
            Just(b"2probe".to_vec()),
            Just(b"3probe".to_vec()),
            Just(b"5".to_vec()),
            Just(b"3".to_vec()),
            Just(b"4hi".to_vec()),
            Just(b"1".to_vec()),
            Just(b"6".to_vec()),
            proptest::collection::vec(any::<u8>(), 0..8),
        ];
        prop_oneof![
            Just(Input::PollRequest),
            Just(Input::PollDone),
            Just(Input::PollAborted),
            Just(Input::Post),
            any::<bool>().prop_map(Input::PostAborted),
            wire.clone().prop_map(Input::Body),
            Just(Input::Attach),
            (any::<bool>(), wire).prop_map(|(b, w)| Input::Frame(b, w)),
            any::<bool>().prop_map(Input::WsClosed),
            (0u16..700).prop_map(Input::Advance),
            Just(Input::Close),
        ]
    }

    proptest::proptest! {
        /// Any input sequence: no panic, one `Closed` at most and nothing after it, a live
        /// session always has a deadline in the future, and a closed one keeps at most the one
        /// close (or noop) owed to a polling client, with a deadline only while it does. Polling
        /// transmits are taken only when a poll is answered, WebSocket ones at once.
        #[test]
        fn arbitrary_inputs_keep_invariants(
            ws in proptest::prelude::any::<bool>(),
            inputs in proptest::collection::vec(arb_input(), 0..40),
        ) {
            let t0 = Instant::now();
            let mut now = t0;
            let kind = if ws { TransportKind::WebSocket } else { TransportKind::Polling };
            let mut s = Session::new(Str::from("p"), kind, cfg(), now);
            let mut closed = 0;
            for input in inputs {
                match input {
                    Input::PollRequest => { let _ = s.handle_poll_request(now); }
                    Input::PollDone => {
                        if s.poll_pending() {
                            while s.poll_transmit_for(TransportKind::Polling).is_some() {}
                        }
                        s.handle_poll_done()
                    }
                    Input::Post => { let _ = s.handle_post_request(now); }
                    Input::PostAborted(too_large) => s.handle_post_aborted(too_large, now),
                    Input::PollAborted => s.handle_poll_aborted(now),
                    Input::Body(b) => { let _ = s.handle_polling_body(Bytes::from(b), now); }
                    Input::Attach => { let _ = s.handle_ws_attach(now); }
                    Input::Frame(true, b) => s.handle_ws_frame(WsFrame::Binary(Bytes::from(b)), now),
                    Input::Frame(false, b) => {
                        if let Ok(t) = Str::from_utf8(Bytes::from(b)) {
                            s.handle_ws_frame(WsFrame::Text(t), now);
                        }
                    }
                    Input::WsClosed(e) => s.handle_ws_closed(e, now),
                    Input::Advance(ms) => {
                        now += u32::from(ms) * MS;
                        if s.poll_timeout().is_some_and(|d| d <= now) {
                            s.handle_timeout(now);
                        }
                    }
                    Input::Close => s.close(CloseReason::ForcedClose, now),
                }
                while s.poll_transmit_for(TransportKind::WebSocket).is_some() {}
                while let Some(e) = s.poll_event() {
                    proptest::prop_assert_eq!(closed, 0, "event after Closed: {:?}", e);
                    if matches!(e, SessionEvent::Closed(_)) {
                        closed += 1;
                    }
                }
                proptest::prop_assert_eq!(s.is_closed(), closed == 1);
                let owed: Vec<Packet> = s.transmits.iter().map(|t| t.packet.clone()).collect();
                if s.is_closed() {
                    proptest::prop_assert!(
                        matches!(owed.as_slice(), [] | [Packet::Close] | [Packet::Noop]),
                        "closed but owes {:?}", owed
                    );
                    proptest::prop_assert_eq!(s.poll_timeout().is_some(), !owed.is_empty());
                } else {
                    proptest::prop_assert!(s.poll_timeout().is_some());
                }
                // No deadline is ever left in the past (a driver would spin on it).
                proptest::prop_assert!(s.poll_timeout().is_none_or(|d| d > now));
            }
        }
    }
}
