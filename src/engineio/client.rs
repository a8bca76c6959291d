//! The client side of an Engine.IO v4 session, sans-IO.
//!
//! [`ClientSession`] owns no socket and no clock. The client's I/O loop feeds it the packets
//! read from the transport ([`ClientSession::handle_packet`]) and the passing of time
//! ([`ClientSession::handle_timeout`]), and drains what to write ([`ClientSession::poll_transmit`]),
//! what happened ([`ClientSession::poll_event`]) and when to call back
//! ([`ClientSession::poll_timeout`]).
//!
//! What it decides:
//! - **Handshake**: the first packet must be OPEN within the connect timeout. The JSON is read
//!   tolerantly: python-engineio announces `pingInterval` as whole seconds (`int(interval) * 1000`,
//!   so `0` for a 0.5 s interval), numbers may be floats, and an old server may omit `maxPayload`.
//! - **Heartbeat**: in v4 the server pings and the client answers. If no ping (or any packet) arrives
//!   within `pingInterval + pingTimeout` (plus one second when the interval looks rounded to whole
//!   seconds), the session is dead.
//! - **Upgrade** (polling → WebSocket): `2probe` on the new WebSocket, `3probe` back, then the I/O
//!   loop pauses polling (the server releases the pending GET with a `6` noop) and calls
//!   [`ClientSession::finish_upgrade`], which sends `5` on the WebSocket.
//! - **Close**: a `1` from the server, a client close, a timeout or a protocol error, reported once.

use super::handshake::Handshake;
use super::packet::Packet;
use super::str::Str;
use bytes::Bytes;
use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The `maxPayload` assumed when a server does not announce one (python-engineio's and the
/// reference server's default).
pub const DEFAULT_MAX_PAYLOAD: u64 = 1_000_000;

/// Extra time allowed between pings when the announced interval is a whole number of seconds,
/// because python-engineio rounds the real interval down to whole seconds.
const ROUNDING_SLACK: Duration = Duration::from_secs(1);

/// Which transport a packet goes out on (or came in on).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    /// The transport the session currently uses.
    Current,
    /// The WebSocket being probed during an upgrade.
    Probe,
}

/// Why a session ended.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ClientCloseReason {
    /// No OPEN packet arrived within the connect timeout.
    #[error("no Engine.IO handshake within {0:?}")]
    HandshakeTimeout(Duration),
    /// No ping arrived within `pingInterval + pingTimeout`.
    #[error("no ping from the server within {0:?}")]
    PingTimeout(Duration),
    /// The server sent a CLOSE packet.
    #[error("the server closed the session")]
    ServerClose,
    /// The client closed the session.
    #[error("closed by the client")]
    ClientClose,
    /// The server sent something the protocol does not allow here.
    #[error("protocol error: {0}")]
    Protocol(String),
}

/// Something the I/O loop must act on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClientSessionEvent {
    /// The handshake arrived (normalized; see the module docs).
    Opened(Handshake),
    /// A text message (usually a Socket.IO packet).
    Message(Str),
    /// A binary message (usually a Socket.IO attachment).
    Binary(Bytes),
    /// The probe succeeded: pause polling (let the pending GET return), then call
    /// [`ClientSession::finish_upgrade`].
    UpgradeReady,
    /// The upgrade did not complete in time or the probe was answered wrongly; keep polling.
    UpgradeFailed,
    /// The session is over; nothing more will be transmitted.
    Closed(ClientCloseReason),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Opening,
    Open,
    Closed,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Upgrade {
    Idle,
    /// `2probe` sent, waiting for `3probe` until the deadline.
    Probing(Instant),
    /// `3probe` received, waiting for the I/O loop to pause polling.
    Ready(Instant),
}

/// One client-side Engine.IO session (see the module docs).
#[derive(Debug)]
pub struct ClientSession {
    state: State,
    upgrade: Upgrade,
    handshake: Option<Handshake>,
    /// When the handshake or the next ping is due.
    deadline: Instant,
    connect_timeout: Duration,
    transmit: VecDeque<(Channel, Packet)>,
    events: VecDeque<ClientSessionEvent>,
}

impl ClientSession {
    /// A session whose transport was just opened at `now`; the OPEN packet must arrive within
    /// `connect_timeout`.
    pub fn new(now: Instant, connect_timeout: Duration) -> ClientSession {
        ClientSession {
            state: State::Opening,
            upgrade: Upgrade::Idle,
            handshake: None,
            deadline: now + connect_timeout,
            connect_timeout,
            transmit: VecDeque::new(),
            events: VecDeque::new(),
        }
    }

    /// The handshake, once it arrived.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.handshake.as_ref()
    }

    /// True between the handshake and the close.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// True once the session ended.
    pub fn is_closed(&self) -> bool {
        self.state == State::Closed
    }

    /// The longest a silent server may stay silent: `pingInterval + pingTimeout`, plus one second
    /// when the interval is a whole number of seconds (python-engineio rounds it down).
    pub fn heartbeat_window(h: &Handshake) -> Duration {
        let slack = if h.ping_interval.is_multiple_of(1000) {
            ROUNDING_SLACK
        } else {
            Duration::ZERO
        };
        h.ping_interval() + h.ping_timeout() + slack
    }

    /// Feeds one packet read from `from` at `now`.
    pub fn handle_packet(&mut self, from: Channel, packet: Packet, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if from == Channel::Probe {
            self.handle_probe_packet(packet, now);
            return;
        }
        match (self.state, packet) {
            (State::Opening, Packet::Open(json)) => match parse_handshake(json.as_str()) {
                Ok(h) => {
                    self.deadline = now + Self::heartbeat_window(&h);
                    self.state = State::Open;
                    self.handshake = Some(h.clone());
                    self.events.push_back(ClientSessionEvent::Opened(h));
                }
                Err(e) => self.close_with(ClientCloseReason::Protocol(e)),
            },
            (State::Opening, other) => self.close_with(ClientCloseReason::Protocol(format!(
                "expected the OPEN packet, got type {}",
                other.type_char()
            ))),
            (State::Open, packet) => {
                // Any packet shows the server is alive; pings are what it promises.
                self.rearm(now);
                match packet {
                    Packet::Ping => self.transmit.push_back((Channel::Current, Packet::Pong)),
                    Packet::Message(text) => {
                        self.events.push_back(ClientSessionEvent::Message(text))
                    }
                    Packet::Binary(data) => self.events.push_back(ClientSessionEvent::Binary(data)),
                    Packet::Close => self.close_with(ClientCloseReason::ServerClose),
                    Packet::Noop | Packet::Pong => {}
                    other => self.close_with(ClientCloseReason::Protocol(format!(
                        "unexpected packet type {} from the server",
                        other.type_char()
                    ))),
                }
            }
            (State::Closed, _) => {}
        }
    }

    fn handle_probe_packet(&mut self, packet: Packet, now: Instant) {
        match (self.upgrade, packet) {
            (Upgrade::Probing(deadline), Packet::PongProbe) => {
                self.upgrade = Upgrade::Ready(deadline);
                self.events.push_back(ClientSessionEvent::UpgradeReady);
            }
            // A ping may reach the new transport before the upgrade completes; answer it there.
            (Upgrade::Probing(_) | Upgrade::Ready(_), Packet::Ping) => {
                self.rearm(now);
                self.transmit.push_back((Channel::Probe, Packet::Pong));
            }
            (Upgrade::Probing(_) | Upgrade::Ready(_), _) => self.fail_upgrade(),
            (Upgrade::Idle, _) => {}
        }
    }

    fn rearm(&mut self, now: Instant) {
        if let Some(h) = &self.handshake {
            self.deadline = now + Self::heartbeat_window(h);
        }
    }

    /// Starts the upgrade: sends `2probe` on the new WebSocket ([`Channel::Probe`]), which must
    /// complete within `timeout`. Ignored unless the session is open and not already upgrading.
    pub fn start_upgrade(&mut self, now: Instant, timeout: Duration) {
        if self.state == State::Open && self.upgrade == Upgrade::Idle {
            self.upgrade = Upgrade::Probing(now + timeout);
            self.transmit.push_back((Channel::Probe, Packet::PingProbe));
        }
    }

    /// Completes the upgrade once polling is paused: sends `5` on the WebSocket, which becomes
    /// [`Channel::Current`]. Returns false (and does nothing) unless the probe succeeded.
    pub fn finish_upgrade(&mut self) -> bool {
        if self.state != State::Open || !matches!(self.upgrade, Upgrade::Ready(_)) {
            return false;
        }
        self.upgrade = Upgrade::Idle;
        self.transmit.push_back((Channel::Probe, Packet::Upgrade));
        true
    }

    fn fail_upgrade(&mut self) {
        self.upgrade = Upgrade::Idle;
        self.events.push_back(ClientSessionEvent::UpgradeFailed);
    }

    /// Closes the session from the client side: a CLOSE packet goes out on the current transport.
    pub fn close(&mut self) {
        if self.state != State::Closed {
            self.transmit.push_back((Channel::Current, Packet::Close));
            self.close_with(ClientCloseReason::ClientClose);
        }
    }

    /// Reports a transport failure or a malformed packet noticed by the I/O loop.
    pub fn fail(&mut self, reason: ClientCloseReason) {
        self.close_with(reason);
    }

    fn close_with(&mut self, reason: ClientCloseReason) {
        if self.state != State::Closed {
            self.state = State::Closed;
            self.upgrade = Upgrade::Idle;
            self.events.push_back(ClientSessionEvent::Closed(reason));
        }
    }

    /// Advances time: reports a missing handshake, a missing ping or a stalled upgrade.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.state == State::Closed {
            return;
        }
        if let Upgrade::Probing(d) | Upgrade::Ready(d) = self.upgrade
            && now >= d
        {
            self.fail_upgrade();
        }
        if now >= self.deadline {
            let reason = match &self.handshake {
                None => ClientCloseReason::HandshakeTimeout(self.connect_timeout),
                Some(h) => ClientCloseReason::PingTimeout(Self::heartbeat_window(h)),
            };
            self.close_with(reason);
        }
    }

    /// When [`ClientSession::handle_timeout`] must be called next (`None` once closed).
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.state == State::Closed {
            return None;
        }
        Some(match self.upgrade {
            Upgrade::Probing(d) | Upgrade::Ready(d) => d.min(self.deadline),
            Upgrade::Idle => self.deadline,
        })
    }

    /// The next packet to write, and on which transport. Protocol packets (pongs, probes,
    /// upgrade, close) only: application messages are written by the I/O loop from its queue.
    pub fn poll_transmit(&mut self) -> Option<(Channel, Packet)> {
        self.transmit.pop_front()
    }

    /// The next event for the I/O loop.
    pub fn poll_event(&mut self) -> Option<ClientSessionEvent> {
        self.events.pop_front()
    }
}

/// Reads the OPEN packet's JSON tolerantly: integer or float numbers, `maxPayload` optional.
pub fn parse_handshake(json: &str) -> Result<Handshake, String> {
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| format!("handshake is not JSON: {e}"))?;
    let sid = v
        .get("sid")
        .and_then(|s| s.as_str())
        .filter(|s| !s.is_empty())
        .ok_or("handshake without a sid")?
        .to_owned();
    let millis = |key: &str| -> Result<Option<u64>, String> {
        match v.get(key) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(n) => n
                .as_u64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.is_finite() && *f >= 0.0)
                        .map(|f| f as u64)
                })
                .map(Some)
                .ok_or_else(|| format!("handshake {key} is not a non-negative number")),
        }
    };
    let upgrades = v
        .get("upgrades")
        .and_then(|u| u.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    Ok(Handshake {
        sid,
        upgrades,
        ping_interval: millis("pingInterval")?.ok_or("handshake without pingInterval")?,
        ping_timeout: millis("pingTimeout")?.ok_or("handshake without pingTimeout")?,
        max_payload: millis("maxPayload")?.unwrap_or(DEFAULT_MAX_PAYLOAD),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(json: &str) -> Packet {
        Packet::Open(Str::from(json.to_owned()))
    }

    fn opened(now: Instant, json: &str) -> ClientSession {
        let mut s = ClientSession::new(now, Duration::from_secs(5));
        s.handle_packet(Channel::Current, open(json), now);
        assert!(matches!(
            s.poll_event(),
            Some(ClientSessionEvent::Opened(_))
        ));
        s
    }

    const PY: &str = r#"{"sid":"abc","upgrades":["websocket"],"pingTimeout":20000,"pingInterval":0,"maxPayload":1000000}"#;

    #[test]
    fn python_rounded_zero_interval_is_tolerated_with_slack() {
        let h = parse_handshake(PY).unwrap();
        assert_eq!(h.ping_interval, 0);
        assert_eq!(ClientSession::heartbeat_window(&h), Duration::from_secs(21));
        let h =
            parse_handshake(r#"{"sid":"a","upgrades":[],"pingInterval":300,"pingTimeout":200}"#)
                .unwrap();
        assert_eq!(h.max_payload, DEFAULT_MAX_PAYLOAD);
        assert_eq!(
            ClientSession::heartbeat_window(&h),
            Duration::from_millis(500)
        );
        let h = parse_handshake(
            r#"{"sid":"a","upgrades":[],"pingInterval":25000.0,"pingTimeout":5e3,"maxPayload":10}"#,
        )
        .unwrap();
        assert_eq!(
            (h.ping_interval, h.ping_timeout, h.max_payload),
            (25000, 5000, 10)
        );
    }

    #[test]
    fn bad_handshakes_are_rejected() {
        for bad in [
            "{",
            r#"{"upgrades":[],"pingInterval":1,"pingTimeout":1}"#,
            r#"{"sid":"a","pingTimeout":1}"#,
            r#"{"sid":"a","pingInterval":-1,"pingTimeout":1}"#,
            r#"{"sid":"a","pingInterval":"x","pingTimeout":1}"#,
        ] {
            assert!(parse_handshake(bad).is_err(), "{bad}");
        }
        let t0 = Instant::now();
        let mut s = ClientSession::new(t0, Duration::from_secs(1));
        s.handle_packet(Channel::Current, open("{}"), t0);
        assert!(matches!(
            s.poll_event(),
            Some(ClientSessionEvent::Closed(ClientCloseReason::Protocol(_)))
        ));
        assert!(s.is_closed());
        assert_eq!(s.poll_timeout(), None);
    }

    #[test]
    fn a_silent_server_is_a_handshake_timeout() {
        let t0 = Instant::now();
        let mut s = ClientSession::new(t0, Duration::from_secs(2));
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(2)));
        s.handle_timeout(t0 + Duration::from_millis(1999));
        assert_eq!(s.poll_event(), None);
        s.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(
            s.poll_event(),
            Some(ClientSessionEvent::Closed(
                ClientCloseReason::HandshakeTimeout(Duration::from_secs(2))
            ))
        );
    }

    #[test]
    fn a_message_before_open_is_a_protocol_error() {
        let t0 = Instant::now();
        let mut s = ClientSession::new(t0, Duration::from_secs(2));
        s.handle_packet(
            Channel::Current,
            Packet::Message(Str::from("0".to_owned())),
            t0,
        );
        assert!(matches!(
            s.poll_event(),
            Some(ClientSessionEvent::Closed(ClientCloseReason::Protocol(_)))
        ));
    }

    #[test]
    fn pings_are_answered_and_rearm_the_heartbeat() {
        let t0 = Instant::now();
        let json =
            r#"{"sid":"a","upgrades":[],"pingInterval":300,"pingTimeout":200,"maxPayload":100}"#;
        let mut s = opened(t0, json);
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_millis(500)));
        let t1 = t0 + Duration::from_millis(300);
        s.handle_packet(Channel::Current, Packet::Ping, t1);
        assert_eq!(s.poll_transmit(), Some((Channel::Current, Packet::Pong)));
        assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_millis(500)));
        s.handle_timeout(t0 + Duration::from_millis(600));
        assert!(s.is_open());
        s.handle_timeout(t1 + Duration::from_millis(500));
        assert_eq!(
            s.poll_event(),
            Some(ClientSessionEvent::Closed(ClientCloseReason::PingTimeout(
                Duration::from_millis(500)
            )))
        );
        assert!(s.is_closed());
    }

    #[test]
    fn messages_and_close_are_reported() {
        let t0 = Instant::now();
        let mut s = opened(t0, PY);
        s.handle_packet(
            Channel::Current,
            Packet::Message(Str::from("2[\"a\"]".to_owned())),
            t0,
        );
        s.handle_packet(
            Channel::Current,
            Packet::Binary(Bytes::from_static(b"\x01")),
            t0,
        );
        s.handle_packet(Channel::Current, Packet::Noop, t0);
        s.handle_packet(Channel::Current, Packet::Close, t0);
        s.handle_packet(Channel::Current, Packet::Ping, t0);
        assert_eq!(
            s.poll_event(),
            Some(ClientSessionEvent::Message(Str::from(
                "2[\"a\"]".to_owned()
            )))
        );
        assert_eq!(
            s.poll_event(),
            Some(ClientSessionEvent::Binary(Bytes::from_static(b"\x01")))
        );
        assert_eq!(
            s.poll_event(),
            Some(ClientSessionEvent::Closed(ClientCloseReason::ServerClose))
        );
        assert_eq!(s.poll_event(), None);
        // Nothing is answered after the close.
        assert_eq!(s.poll_transmit(), None);
    }

    #[test]
    fn client_close_sends_close_once() {
        let t0 = Instant::now();
        let mut s = opened(t0, PY);
        s.close();
        s.close();
        assert_eq!(s.poll_transmit(), Some((Channel::Current, Packet::Close)));
        assert_eq!(s.poll_transmit(), None);
        assert_eq!(
            s.poll_event(),
            Some(ClientSessionEvent::Closed(ClientCloseReason::ClientClose))
        );
        assert_eq!(s.poll_event(), None);
    }

    #[test]
    fn upgrade_probe_then_finish() {
        let t0 = Instant::now();
        let mut s = opened(t0, PY);
        assert!(!s.finish_upgrade());
        s.start_upgrade(t0, Duration::from_secs(3));
        assert_eq!(s.poll_transmit(), Some((Channel::Probe, Packet::PingProbe)));
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(3)));
        s.handle_packet(Channel::Probe, Packet::PongProbe, t0);
        assert_eq!(s.poll_event(), Some(ClientSessionEvent::UpgradeReady));
        // The pending poll is released with a noop on the old transport.
        s.handle_packet(Channel::Current, Packet::Noop, t0);
        assert!(s.finish_upgrade());
        assert_eq!(s.poll_transmit(), Some((Channel::Probe, Packet::Upgrade)));
        assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(21)));
        assert!(s.is_open());
    }

    #[test]
    fn a_wrong_or_late_probe_answer_abandons_the_upgrade_only() {
        let t0 = Instant::now();
        let mut s = opened(t0, PY);
        s.start_upgrade(t0, Duration::from_secs(3));
        s.handle_packet(
            Channel::Probe,
            Packet::Message(Str::from("x".to_owned())),
            t0,
        );
        assert_eq!(s.poll_event(), Some(ClientSessionEvent::UpgradeFailed));
        assert!(!s.finish_upgrade());
        s.start_upgrade(t0, Duration::from_secs(3));
        s.handle_timeout(t0 + Duration::from_secs(3));
        assert_eq!(s.poll_event(), Some(ClientSessionEvent::UpgradeFailed));
        assert!(s.is_open());
    }

    proptest::proptest! {
        /// Any sequence of packets and timeouts never panics, nothing is transmitted after the
        /// session closed, and exactly one Closed event is reported.
        #[test]
        fn arbitrary_input_never_panics(ops in proptest::collection::vec((0u8..12, 0u64..3000), 0..60)) {
            let t0 = Instant::now();
            let mut s = ClientSession::new(t0, Duration::from_secs(1));
            let mut closed = 0;
            for (op, ms) in ops {
                let was_closed = s.is_closed();
                let now = t0 + Duration::from_millis(ms);
                match op {
                    0 => s.handle_packet(Channel::Current, open(PY), now),
                    1 => s.handle_packet(Channel::Current, Packet::Ping, now),
                    2 => s.handle_packet(Channel::Current, Packet::Close, now),
                    3 => s.handle_packet(Channel::Current, Packet::Message(Str::from("4".to_owned())), now),
                    4 => s.handle_packet(Channel::Probe, Packet::PongProbe, now),
                    5 => s.handle_packet(Channel::Probe, Packet::Ping, now),
                    6 => s.start_upgrade(now, Duration::from_millis(500)),
                    7 => { s.finish_upgrade(); }
                    8 => s.handle_timeout(now),
                    9 => s.close(),
                    10 => s.handle_packet(Channel::Current, Packet::Upgrade, now),
                    _ => s.handle_packet(Channel::Current, open("{"), now),
                }
                while let Some(e) = s.poll_event() {
                    if matches!(e, ClientSessionEvent::Closed(_)) { closed += 1; }
                }
                while let Some((_, p)) = s.poll_transmit() {
                    proptest::prop_assert!(!was_closed, "{:?} sent after the close", p);
                }
            }
            proptest::prop_assert!(closed <= 1);
            proptest::prop_assert_eq!(closed == 1, s.is_closed());
        }
    }
}
