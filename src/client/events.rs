//! What the relay did, as the client reports it, and the answer to an event that wants an ack.

use super::error::ClientError;
use super::link::Link;
use crate::queue::Class;
use crate::socketio::{Arg, Packet};
use serde_json::Value;
use std::sync::Arc;

/// What the relay did, delivered through the receiver returned by
/// [`Client::connect`](super::Client::connect).
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
    pub(super) link: Arc<Link>,
    pub(super) namespace: String,
    pub(super) id: u64,
}

impl AckResponder {
    /// Sends the ack with `args` (binary allowed).
    pub fn send(self, args: Vec<Arg>) -> Result<(), ClientError> {
        let packet = Packet::ack(&self.namespace, self.id, args);
        self.link
            .enqueue(&self.namespace, packet.encode(), Class::Control)
    }
}
