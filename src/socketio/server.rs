//! The server side of the Socket.IO session rules for one Engine.IO connection, sans-IO: which
//! namespaces it joined, what each client packet means, the CONNECT / CONNECT_ERROR answers, and
//! the deadline for joining a first namespace (Socket.IO's `connectTimeout`).
//!
//! The server's I/O feeds it decoded packets ([`ServerNamespaces::handle_packet`]), asks the
//! application about a [`ServerAction::Join`] and answers with [`ServerNamespaces::accept`] or
//! [`ServerNamespaces::reject`]. `S` is what the server keeps per joined namespace (its socket);
//! packets for a namespace come back with it, so routing needs no second table.

use super::packet::{Arg, Packet, PacketKind};
use crate::engineio::Str;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// What a client packet asks the server to do.
#[derive(Debug)]
pub enum ServerAction<S> {
    /// Join `nsp` (it exists and is not joined yet): create its socket, register it with
    /// [`ServerNamespaces::joining`], ask the application, then answer with
    /// [`ServerNamespaces::accept`] or [`ServerNamespaces::reject`].
    Join {
        /// The namespace.
        nsp: Str,
        /// The CONNECT payload (`{}` when the client sent none).
        auth: Value,
    },
    /// Send this packet (the CONNECT_ERROR for a namespace the server does not have).
    Reply(Packet),
    /// The client left the namespace of `socket`.
    Leave(S),
    /// An event for `socket`.
    Event {
        /// The socket of the event's namespace.
        socket: S,
        /// The event name.
        name: String,
        /// Its arguments.
        args: Vec<Arg>,
        /// The ack id when the client wants an answer.
        ack: Option<u64>,
    },
    /// The answer to an event the server sent `socket` with ack id `id`.
    Ack {
        /// The socket of the ack's namespace.
        socket: S,
        /// The ack id.
        id: u64,
        /// Its arguments.
        args: Vec<Arg>,
    },
    /// The client broke the protocol: close the connection.
    Close,
}

/// The namespaces of one connection, server side (see the module docs).
#[derive(Debug)]
pub struct ServerNamespaces<S> {
    joined: HashMap<Str, S>,
    /// Until a first namespace is asked for.
    deadline: Option<Instant>,
}

impl<S: Clone> ServerNamespaces<S> {
    /// A connection opened at `now` that must ask for a namespace within `connect_timeout`.
    pub fn new(now: Instant, connect_timeout: Duration) -> ServerNamespaces<S> {
        ServerNamespaces {
            joined: HashMap::new(),
            deadline: Some(now.checked_add(connect_timeout).unwrap_or(now)),
        }
    }

    /// What a packet from the client asks for; `None` when it changes nothing (a packet for a
    /// namespace the client is not in, a second CONNECT). `exists` says whether the server has a
    /// namespace.
    pub fn handle_packet(
        &mut self,
        p: Packet,
        exists: impl FnOnce(&str) -> bool,
    ) -> Option<ServerAction<S>> {
        match p.kind {
            PacketKind::Connect if !exists(p.nsp.as_str()) => Some(ServerAction::Reply(
                Packet::connect_error(p.nsp.as_str(), json!({ "message": "Invalid namespace" })),
            )),
            PacketKind::Connect if self.joined.contains_key(&p.nsp) => None,
            PacketKind::Connect => {
                // Asking for a namespace that exists ends the wait, whatever the application says.
                self.deadline = None;
                Some(ServerAction::Join {
                    nsp: p.nsp,
                    auth: p.data.unwrap_or_else(|| json!({})),
                })
            }
            PacketKind::Disconnect => self.joined.remove(&p.nsp).map(ServerAction::Leave),
            PacketKind::Event | PacketKind::BinaryEvent => {
                let socket = self.joined.get(&p.nsp)?.clone();
                let name = p.event_name().map(str::to_owned);
                let ack = p.id;
                match (name, p.into_args()) {
                    (Some(name), Some(args)) => Some(ServerAction::Event {
                        socket,
                        name,
                        args,
                        ack,
                    }),
                    _ => Some(ServerAction::Close),
                }
            }
            PacketKind::Ack | PacketKind::BinaryAck => {
                let socket = self.joined.get(&p.nsp)?.clone();
                let id = p.id?;
                let args = p.into_args()?;
                Some(ServerAction::Ack { socket, id, args })
            }
            PacketKind::ConnectError => Some(ServerAction::Close),
        }
    }

    /// The socket of a [`ServerAction::Join`] exists: packets for `nsp` go to it from now on
    /// (what the connect handler emits is delivered after the CONNECT answer).
    pub fn joining(&mut self, nsp: Str, socket: S) {
        self.joined.insert(nsp, socket);
    }

    /// The application accepted `nsp`: the CONNECT answer with the socket id.
    pub fn accept(&self, nsp: &str, sid: &str) -> Packet {
        Packet::connect(nsp, Some(json!({ "sid": sid })))
    }

    /// The application refused `nsp` with `data` (an object, else wrapped as its `message`):
    /// the CONNECT_ERROR answer; the namespace is not joined.
    pub fn reject(&mut self, nsp: &str, data: Value) -> Packet {
        self.joined.remove(&Str::from(nsp));
        let data = match data {
            Value::Object(_) => data,
            other => json!({ "message": other }),
        };
        Packet::connect_error(nsp, data)
    }

    /// The socket of `nsp` left (server-side disconnect, or the connection closed).
    pub fn leave(&mut self, nsp: &str) -> Option<S> {
        self.joined.remove(&Str::from(nsp))
    }

    /// Every joined socket, forgotten (the connection closed).
    pub fn leave_all(&mut self) -> Vec<S> {
        self.joined.drain().map(|(_, s)| s).collect()
    }

    /// Namespaces joined.
    pub fn joined(&self) -> usize {
        self.joined.len()
    }

    /// True when the connection must be closed at `now`: no namespace asked for in time.
    pub fn handle_timeout(&mut self, now: Instant) -> bool {
        self.deadline.is_some_and(|d| now >= d)
    }

    /// When [`ServerNamespaces::handle_timeout`] must be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.deadline
    }
}
