//! [`ClientError`]: why the client could not connect, lost the connection, or refused a send.

use super::options::OptionsError;
use std::time::Duration;

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
    /// Too many acks are awaited already.
    #[error(transparent)]
    TooManyAcks(#[from] crate::socketio::TooManyAcks),
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
