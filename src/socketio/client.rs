//! The client side of the Socket.IO session rules, sans-IO: joining namespaces once Engine.IO is
//! open (CONNECT with each namespace's auth), what the server's CONNECT / CONNECT_ERROR /
//! DISCONNECT / EVENT / ACK packets mean, the deadline for every CONNECT answer, and the goodbye.
//!
//! The I/O loop feeds it decoded packets ([`ClientNamespaces::handle_packet`]) and the time
//! ([`ClientNamespaces::handle_timeout`]), asks when to call back
//! ([`ClientNamespaces::poll_timeout`]) and writes the packets it returns.

use super::packet::{Arg, Packet, PacketKind};
use serde_json::Value;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

/// What a packet from the server means for the client.
#[derive(Debug, Clone, PartialEq)]
pub enum NamespaceEvent {
    /// The server accepted `namespace`; `all` when no other namespace is still waiting.
    Connected {
        /// The namespace.
        namespace: String,
        /// Every namespace asked for is connected now.
        all: bool,
    },
    /// An event.
    Event {
        /// Its namespace.
        namespace: String,
        /// Its name (empty when the server sent none).
        name: String,
        /// Its arguments.
        args: Vec<Arg>,
        /// The ack id when the server wants an answer.
        ack: Option<u64>,
    },
    /// The answer to an event the client sent with ack id `id`.
    Ack {
        /// The ack id.
        id: u64,
        /// Its arguments.
        args: Vec<Arg>,
    },
}

/// Why the connection cannot go on (the client closes it, then reconnects).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum NamespaceError {
    /// The server refused a namespace (CONNECT_ERROR).
    #[error("the server refused namespace {namespace}: {message}")]
    Refused {
        /// The namespace.
        namespace: String,
        /// The server's reason ([`connect_error_message`]).
        message: String,
        /// The whole CONNECT_ERROR payload.
        data: Value,
    },
    /// The server disconnected a namespace.
    #[error("the server disconnected namespace {0}")]
    Disconnected(String),
    /// Namespaces still without a CONNECT answer when the deadline passed.
    #[error("no CONNECT answer for namespace(s) {}", .0.join(", "))]
    ConnectTimeout(Vec<String>),
}

/// The namespaces of one client connection (see the module docs).
#[derive(Debug, Default)]
pub struct ClientNamespaces {
    pending: BTreeSet<String>,
    connected: BTreeSet<String>,
    deadline: Option<Instant>,
}

impl ClientNamespaces {
    /// A connection that has joined nothing yet.
    pub fn new() -> ClientNamespaces {
        ClientNamespaces::default()
    }

    /// Engine.IO is open at `now`: the CONNECT packets for `namespaces` (each with its auth
    /// payload), every one of which must be answered within `timeout`.
    pub fn connect(
        &mut self,
        namespaces: Vec<(String, Option<Value>)>,
        now: Instant,
        timeout: Duration,
    ) -> Vec<Packet> {
        self.deadline = Some(now.checked_add(timeout).unwrap_or(now));
        namespaces
            .into_iter()
            .map(|(ns, auth)| {
                let packet = Packet::connect(&ns, auth);
                self.pending.insert(ns);
                packet
            })
            .collect()
    }

    /// What a packet from the server means; `Ok(None)` for one that changes nothing (e.g. a
    /// second CONNECT for a namespace already connected).
    pub fn handle_packet(&mut self, p: Packet) -> Result<Option<NamespaceEvent>, NamespaceError> {
        let namespace = p.nsp.as_str().to_owned();
        Ok(match p.kind {
            PacketKind::Connect => {
                if !self.pending.remove(&namespace) {
                    return Ok(None);
                }
                self.connected.insert(namespace.clone());
                let all = self.pending.is_empty();
                if all {
                    self.deadline = None;
                }
                Some(NamespaceEvent::Connected { namespace, all })
            }
            PacketKind::ConnectError => {
                let data = p.data.unwrap_or(Value::Null);
                return Err(NamespaceError::Refused {
                    namespace,
                    message: connect_error_message(&data),
                    data,
                });
            }
            PacketKind::Disconnect => {
                self.connected.remove(&namespace);
                return Err(NamespaceError::Disconnected(namespace));
            }
            PacketKind::Event | PacketKind::BinaryEvent => {
                let name = p.event_name().unwrap_or_default().to_owned();
                let ack = p.id;
                let args = p.into_args().unwrap_or_default();
                Some(NamespaceEvent::Event {
                    namespace,
                    name,
                    args,
                    ack,
                })
            }
            PacketKind::Ack | PacketKind::BinaryAck => {
                let Some(id) = p.id else { return Ok(None) };
                let args = p.into_args().unwrap_or_default();
                Some(NamespaceEvent::Ack { id, args })
            }
        })
    }

    /// Advances time: fails once the CONNECT deadline passed with namespaces still waiting.
    pub fn handle_timeout(&mut self, now: Instant) -> Result<(), NamespaceError> {
        match self.deadline {
            Some(d) if now >= d && !self.pending.is_empty() => Err(NamespaceError::ConnectTimeout(
                self.pending.iter().cloned().collect(),
            )),
            _ => Ok(()),
        }
    }

    /// When [`ClientNamespaces::handle_timeout`] must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }

    /// The connected namespaces.
    pub fn connected(&self) -> impl Iterator<Item = &str> {
        self.connected.iter().map(String::as_str)
    }

    /// A graceful close: DISCONNECT for every connected namespace. Forgets them all.
    pub fn goodbye(&mut self) -> Vec<Packet> {
        self.pending.clear();
        self.deadline = None;
        std::mem::take(&mut self.connected)
            .iter()
            .map(|ns| Packet::disconnect(ns))
            .collect()
    }
}

/// The server's reason from a CONNECT_ERROR payload: `{"message": …}` or a plain string.
pub fn connect_error_message(data: &Value) -> String {
    match data {
        Value::String(s) => s.clone(),
        Value::Object(m) => match m.get("message") {
            Some(Value::String(s)) => s.clone(),
            _ => data.to_string(),
        },
        Value::Null => "connection refused (no reason given)".into(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn connect_error_messages_from_real_servers() {
        // python-socketio: ConnectionRefusedError("bad token") / Node: next(new Error("bad token"))
        assert_eq!(
            connect_error_message(&json!({"message": "bad token"})),
            "bad token"
        );
        // Older python-socketio: a plain string payload.
        assert_eq!(
            connect_error_message(&Value::String("Unable to connect".into())),
            "Unable to connect"
        );
        assert_eq!(
            connect_error_message(&json!({"message": "x", "data": {"code": 1}})),
            "x"
        );
        assert_eq!(connect_error_message(&json!({"code": 4})), r#"{"code":4}"#);
        assert!(connect_error_message(&Value::Null).contains("refused"));
    }
}
