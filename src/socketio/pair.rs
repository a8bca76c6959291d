//! In-memory client/server pairs for the session rules (in the way of quinn's `tests/util.rs`
//! `Pair`): a [`ClientNamespaces`] and a [`ServerNamespaces`] with their ack tables, wired
//! through the real encoder and decoder, driven until idle on a fake clock. No sockets, no
//! runtime.

use super::acks::AckTable;
use super::client::{ClientNamespaces, NamespaceError, NamespaceEvent};
use super::decoder::{Decoder, DecoderLimits};
use super::packet::{Arg, Packet};
use super::server::{ServerAction, ServerNamespaces};
use bytes::Bytes;
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::time::{Duration, Instant};

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const SERVER_JOIN_TIMEOUT: Duration = Duration::from_secs(45);
const ACK_TIMEOUT: Duration = Duration::from_secs(2);

/// The application of the test server: which namespaces exist and who may join.
type Verdict = fn(&str, &Value) -> Result<(), Value>;

/// Everyone may join.
fn open(_: &str, _: &Value) -> Result<(), Value> {
    Ok(())
}

struct Pair {
    now: Instant,
    client: ClientNamespaces,
    client_acks: AckTable<&'static str>,
    /// The server's sockets are their namespace names.
    server: ServerNamespaces<String>,
    server_acks: AckTable<&'static str>,
    namespaces: Vec<&'static str>,
    verdict: Verdict,
    to_server: VecDeque<Packet>,
    to_client: VecDeque<Packet>,
    /// What the client saw, in order.
    client_saw: Vec<Result<NamespaceEvent, NamespaceError>>,
    /// What the server saw, in order (`join /a`, `leave /a`, `event /a x`, `ack /a 3`, `close`).
    server_saw: Vec<String>,
    /// Acks resolved on either side: (waiter, its arguments).
    resolved: Vec<(&'static str, Vec<Arg>)>,
}

/// One packet as it crosses the wire: encoded, then decoded by a fresh decoder (text part and
/// attachments as separate Engine.IO messages).
fn wire(p: &Packet) -> Packet {
    let encoded = p.encode();
    let mut d = Decoder::new(DecoderLimits::default());
    let mut out = d.feed_text(encoded.text).expect("valid text part");
    for a in encoded.attachments {
        out = d.feed_binary(a).expect("expected attachment");
    }
    out.expect("complete packet")
}

impl Pair {
    fn new(namespaces: Vec<&'static str>, verdict: Verdict) -> Pair {
        let now = Instant::now();
        Pair {
            now,
            client: ClientNamespaces::new(),
            client_acks: AckTable::new(4),
            server: ServerNamespaces::new(now, SERVER_JOIN_TIMEOUT),
            server_acks: AckTable::new(4),
            namespaces,
            verdict,
            to_server: VecDeque::new(),
            to_client: VecDeque::new(),
            client_saw: Vec::new(),
            server_saw: Vec::new(),
            resolved: Vec::new(),
        }
    }

    /// The client joins `namespaces` (Engine.IO just opened), then the pair runs until idle.
    fn join(&mut self, namespaces: &[&str]) {
        let asked = namespaces
            .iter()
            .map(|ns| (ns.to_string(), Some(json!({ "token": "t" }))))
            .collect();
        let connects = self.client.connect(asked, self.now, CONNECT_TIMEOUT);
        self.to_server.extend(connects.iter().map(wire));
        self.drive();
    }

    /// Delivers packets both ways until none is in flight.
    fn drive(&mut self) {
        while !(self.to_server.is_empty() && self.to_client.is_empty()) {
            while let Some(p) = self.to_server.pop_front() {
                self.at_server(p);
            }
            while let Some(p) = self.to_client.pop_front() {
                let got = self.client.handle_packet(p).transpose();
                if let Some(Ok(NamespaceEvent::Ack { id, args })) = &got
                    && let Some(waiter) = self.client_acks.resolve(*id)
                {
                    self.resolved.push((waiter, args.clone()));
                }
                self.client_saw.extend(got);
            }
        }
    }

    fn at_server(&mut self, p: Packet) {
        let namespaces = self.namespaces.clone();
        let action = self.server.handle_packet(p, |ns| namespaces.contains(&ns));
        match action {
            None => {}
            Some(ServerAction::Join { nsp, auth }) => {
                self.server_saw.push(format!("join {}", nsp.as_str()));
                self.server.joining(nsp.clone(), nsp.as_str().to_owned());
                let answer = match (self.verdict)(nsp.as_str(), &auth) {
                    Ok(()) => self.server.accept(nsp.as_str(), "sid-1"),
                    Err(data) => self.server.reject(nsp.as_str(), data),
                };
                self.to_client.push_back(wire(&answer));
            }
            Some(ServerAction::Reply(p)) => self.to_client.push_back(wire(&p)),
            Some(ServerAction::Leave(ns)) => self.server_saw.push(format!("leave {ns}")),
            Some(ServerAction::Event {
                socket,
                name,
                args,
                ack,
            }) => {
                self.server_saw.push(format!("event {socket} {name}"));
                // The test server answers every ack with its arguments.
                if let Some(id) = ack {
                    self.to_client
                        .push_back(wire(&Packet::ack(&socket, id, args)));
                }
            }
            Some(ServerAction::Ack { socket, id, args }) => {
                self.server_saw.push(format!("ack {socket} {id}"));
                if let Some(waiter) = self.server_acks.resolve(id) {
                    self.resolved.push((waiter, args));
                }
            }
            Some(ServerAction::Close) => self.server_saw.push("close".into()),
        }
    }

    /// The client emits `name` on `ns`, asking for an ack awaited by `waiter`.
    fn client_emit_with_ack(&mut self, waiter: &'static str, ns: &str, name: &str, args: Vec<Arg>) {
        let id = self
            .client_acks
            .register(waiter, self.now, ACK_TIMEOUT)
            .expect("room for the ack");
        self.to_server
            .push_back(wire(&Packet::event(ns, name, args, Some(id))));
        self.drive();
    }

    fn advance(&mut self, d: Duration) {
        self.now += d;
    }

    fn client_errors(&self) -> Vec<&NamespaceError> {
        self.client_saw
            .iter()
            .filter_map(|e| e.as_ref().err())
            .collect()
    }

    fn client_connected(&self) -> Vec<(&str, bool)> {
        self.client_saw
            .iter()
            .filter_map(|e| match e {
                Ok(NamespaceEvent::Connected { namespace, all }) => {
                    Some((namespace.as_str(), *all))
                }
                _ => None,
            })
            .collect()
    }
}

#[test]
fn namespaces_join_and_the_last_one_completes_the_connection() {
    let mut p = Pair::new(vec!["/", "/admin"], open);
    p.join(&["/", "/admin"]);
    assert_eq!(p.client_connected(), [("/", false), ("/admin", true)]);
    assert_eq!(p.server_saw, ["join /", "join /admin"]);
    assert_eq!(p.server.joined(), 2);
    assert_eq!(
        p.client.poll_timeout(),
        None,
        "no deadline once all answered"
    );
    assert_eq!(p.server.poll_timeout(), None, "the join deadline is off");
    // A second CONNECT for a joined namespace changes nothing on either side.
    p.to_server.push_back(wire(&Packet::connect("/", None)));
    p.drive();
    assert_eq!(p.server_saw.len(), 2);
}

#[test]
fn refused_and_unknown_namespaces_are_connect_errors_with_the_reason() {
    let mut p = Pair::new(vec!["/"], |_, auth| {
        if auth["token"] == "t" {
            Err(json!("expired token"))
        } else {
            Ok(())
        }
    });
    p.join(&["/", "/nope"]);
    let errors = p.client_errors();
    assert_eq!(errors.len(), 2, "{:?}", p.client_saw);
    assert!(
        matches!(errors[0], NamespaceError::Refused { namespace, message, data }
        if namespace == "/" && message == "expired token" && data == &json!({"message": "expired token"}))
    );
    assert!(
        matches!(errors[1], NamespaceError::Refused { namespace, message, .. }
        if namespace == "/nope" && message == "Invalid namespace")
    );
    assert_eq!(p.server.joined(), 0, "a refused namespace is not joined");
    assert_eq!(p.server_saw, ["join /"]);
}

#[test]
fn an_unanswered_connect_times_out_at_the_deadline_and_not_before() {
    let mut p = Pair::new(vec!["/"], open);
    let t0 = p.now;
    // The CONNECT is lost on the way.
    let _ = p
        .client
        .connect(vec![("/cams".into(), None)], t0, CONNECT_TIMEOUT);
    assert_eq!(p.client.poll_timeout(), Some(t0 + CONNECT_TIMEOUT));
    p.advance(CONNECT_TIMEOUT - Duration::from_millis(1));
    assert_eq!(p.client.handle_timeout(p.now), Ok(()));
    p.advance(Duration::from_millis(1));
    assert_eq!(
        p.client.handle_timeout(p.now),
        Err(NamespaceError::ConnectTimeout(vec!["/cams".into()]))
    );
}

#[test]
fn a_client_that_joins_nothing_is_closed_by_the_server_after_its_timeout() {
    let mut p = Pair::new(vec!["/"], open);
    let t0 = p.now;
    assert!(
        !p.server
            .handle_timeout(t0 + SERVER_JOIN_TIMEOUT - Duration::from_millis(1))
    );
    assert!(p.server.handle_timeout(t0 + SERVER_JOIN_TIMEOUT));
    // Asking for an existing namespace ends the wait, even when the application refuses.
    let mut p = Pair::new(vec!["/"], |_, _| Err(json!({"message": "no"})));
    p.join(&["/"]);
    assert!(!p.server.handle_timeout(t0 + SERVER_JOIN_TIMEOUT * 2));
}

#[test]
fn acks_come_back_to_their_waiter_both_ways_with_binary_arguments() {
    let mut p = Pair::new(vec!["/", "/admin"], open);
    p.join(&["/", "/admin"]);
    let frame = Bytes::from_static(b"\x00\x01\x02");
    p.client_emit_with_ack(
        "client-ping",
        "/admin",
        "ping",
        vec![Arg::Json(json!(1)), Arg::Binary(frame.clone())],
    );
    assert_eq!(
        p.server_saw.last().map(String::as_str),
        Some("event /admin ping")
    );
    assert_eq!(
        p.resolved,
        [("client-ping", vec![Arg::Json(json!(1)), Arg::Binary(frame)])]
    );
    assert!(p.client_acks.is_empty());

    // The server asks; the client's answer resolves the server's waiter.
    let id = p
        .server_acks
        .register("server-watch", p.now, ACK_TIMEOUT)
        .expect("room");
    p.to_client
        .push_back(wire(&Packet::event("/", "watch", vec![], Some(id))));
    p.drive();
    let Some(Ok(NamespaceEvent::Event {
        ack: Some(asked), ..
    })) = p.client_saw.last()
    else {
        panic!("{:?}", p.client_saw.last());
    };
    p.to_server.push_back(wire(&Packet::ack(
        "/",
        *asked,
        vec![Arg::Json(json!("ok"))],
    )));
    p.drive();
    assert_eq!(
        p.resolved[1],
        ("server-watch", vec![Arg::Json(json!("ok"))])
    );
    assert_eq!(
        p.server_saw.last().map(String::as_str),
        Some(&*format!("ack / {id}"))
    );
}

#[test]
fn an_unanswered_ack_expires_and_a_late_answer_resolves_nothing() {
    let mut p = Pair::new(vec!["/"], open);
    p.join(&["/"]);
    let id = p
        .server_acks
        .register("late", p.now, ACK_TIMEOUT)
        .expect("room");
    p.advance(ACK_TIMEOUT);
    assert_eq!(p.server_acks.expire(p.now), vec!["late"]);
    p.to_server
        .push_back(wire(&Packet::ack("/", id, vec![Arg::Json(json!(1))])));
    p.drive();
    assert!(p.resolved.is_empty());
}

#[test]
fn goodbye_leaves_every_namespace_and_a_server_disconnect_ends_the_connection() {
    let mut p = Pair::new(vec!["/", "/admin"], open);
    p.join(&["/", "/admin"]);
    let bye = p.client.goodbye();
    p.to_server.extend(bye.iter().map(wire));
    p.drive();
    assert_eq!(&p.server_saw[2..], ["leave /", "leave /admin"]);
    assert_eq!(p.server.joined(), 0);
    assert_eq!(p.client.connected().count(), 0);

    let mut p = Pair::new(vec!["/"], open);
    p.join(&["/"]);
    assert_eq!(p.server.leave("/").as_deref(), Some("/"));
    p.to_client.push_back(wire(&Packet::disconnect("/")));
    p.drive();
    assert_eq!(
        p.client_errors(),
        [&NamespaceError::Disconnected("/".into())]
    );
}

#[test]
fn events_without_a_name_close_the_connection_and_others_namespaces_are_ignored() {
    let mut p = Pair::new(vec!["/", "/admin"], open);
    p.join(&["/"]);
    // An event for a namespace the client did not join: ignored.
    p.to_server
        .push_back(wire(&Packet::event("/admin", "x", vec![], None)));
    // An event whose first element is not a name: close.
    let mut nameless = Packet::event("/", "x", vec![], None);
    nameless.data = Some(json!([1]));
    p.to_server.push_back(wire(&nameless));
    p.drive();
    assert_eq!(p.server_saw, ["join /", "close"]);
    // CONNECT_ERROR is a server-to-client packet: from a client it is a protocol error.
    p.to_server
        .push_back(wire(&Packet::connect_error("/", json!({}))));
    p.drive();
    assert_eq!(p.server_saw.last().map(String::as_str), Some("close"));
}
