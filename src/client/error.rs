//! [`ClientError`]: why the client could not connect, lost the connection, or refused a send —
//! typed by cause, with the underlying error as its source; free text only where it comes from
//! the relay (its refusal message, an HTTP error body).

use super::options::OptionsError;
use super::tls::ClientTlsError;
use crate::engineio::client::ClientCloseReason;
use crate::engineio::{PacketError, PayloadError};
use crate::socketio::DecodeError;
use std::fmt;
use std::time::Duration;

/// The error of a library the client uses (I/O, hyper, tungstenite, a join error).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why the client could not connect or lost the connection (its text is kept as `last_error`).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The settings cannot work.
    #[error(transparent)]
    Options(#[from] OptionsError),
    /// The TLS settings cannot be used (e.g. the CA file).
    #[error("TLS: {0}")]
    TlsSetup(#[from] ClientTlsError),
    /// A step of opening a connection failed.
    #[error("connect: {step} {peer}: {source}")]
    Connect {
        /// Which step.
        step: ConnectStep,
        /// The relay's `host:port`.
        peer: String,
        /// What failed.
        source: BoxError,
    },
    /// The TLS handshake failed (e.g. the certificate is not trusted).
    #[error("TLS: {peer}: {source}")]
    Tls {
        /// The relay's `host:port` (or host name, when it is not a valid one).
        peer: String,
        /// What failed.
        source: BoxError,
    },
    /// Something did not happen in time.
    #[error("timeout: {0}")]
    Timeout(Waited),
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
    Transport(LinkFailure),
    /// The relay sent something the protocol does not allow.
    #[error("protocol: {0}")]
    Protocol(ProtocolError),
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

/// The steps of opening a connection to the relay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectStep {
    /// The TCP connection.
    Tcp,
    /// Setting `TCP_NODELAY` on it.
    TcpNoDelay,
    /// The WebSocket request and handshake (also of an upgrade).
    WebSocket,
    /// The HTTP/1.1 connection or request of long-polling.
    Http,
}

impl fmt::Display for ConnectStep {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ConnectStep::Tcp => "TCP",
            ConnectStep::TcpNoDelay => "TCP_NODELAY",
            ConnectStep::WebSocket => "WebSocket handshake with",
            ConnectStep::Http => "HTTP",
        })
    }
}

/// What did not happen in time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Waited {
    /// TCP connect and the TLS handshake, with the relay at `host:port`.
    #[error("connecting to {0}")]
    Connecting(String),
    /// The WebSocket handshake with the relay.
    #[error("WebSocket handshake with {0}")]
    WebSocketHandshake(String),
    /// The first long-polling request with the relay.
    #[error("polling handshake with {0}")]
    PollingHandshake(String),
    /// The Engine.IO handshake or a ping (the session's own deadline).
    #[error(transparent)]
    Session(ClientCloseReason),
    /// The CONNECT answers of these namespaces.
    #[error("no CONNECT answer for namespace(s) {}", .0.join(", "))]
    Namespaces(Vec<String>),
    /// Writing the WebSocket upgrade probe.
    #[error("writing the upgrade probe")]
    UpgradeProbe,
    /// The upgrade, once long-polling was paused for it.
    #[error("the upgrade to WebSocket stalled after polling was paused")]
    UpgradeStalled,
}

/// How an open connection failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkFailure {
    /// Reading the WebSocket failed.
    #[error("WebSocket read: {0}")]
    WebSocketRead(BoxError),
    /// Writing the WebSocket failed.
    #[error("WebSocket write: {0}")]
    WebSocketWrite(BoxError),
    /// The relay closed the WebSocket.
    #[error("the relay closed the WebSocket")]
    WebSocketClosed,
    /// A long-polling request failed.
    #[error("polling {method}: {source}")]
    Polling {
        /// `GET` or `POST`.
        method: http::Method,
        /// What failed.
        source: BoxError,
    },
    /// The relay answered a long-polling request with an error status.
    #[error("polling {method} answered {status}: {body}")]
    PollingStatus {
        /// `GET` or `POST`.
        method: http::Method,
        /// The HTTP status.
        status: http::StatusCode,
        /// The start of the answer's body.
        body: String,
    },
    /// The session ended: the relay sent CLOSE (or the client closed it).
    #[error(transparent)]
    Session(ClientCloseReason),
    /// The relay disconnected a namespace.
    #[error("the relay disconnected namespace {0}")]
    NamespaceDisconnected(String),
    /// Long-polling stopped outside an upgrade.
    #[error("long-polling stopped")]
    PollingStopped,
    /// Every reader and writer task of the connection ended.
    #[error("all transport tasks ended")]
    TasksEnded,
    /// The writer task ended.
    #[error("the transport writer ended")]
    WriterEnded,
    /// Protocol packets backed up behind a writer that does not write.
    #[error("the link is stalled (protocol packets backed up)")]
    Stalled,
}

/// What the relay sent that the protocol does not allow.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProtocolError {
    /// The Engine.IO session saw a packet it does not allow (see the text).
    #[error("{0}")]
    Session(String),
    /// An Engine.IO packet that does not decode.
    #[error("from the relay: {0}")]
    Packet(#[from] PacketError),
    /// A long-polling payload that does not decode.
    #[error("polling payload from the relay: {0}")]
    Payload(#[from] PayloadError),
    /// A Socket.IO packet or attachment that does not decode.
    #[error("Socket.IO packet: {0}")]
    SocketIo(#[from] DecodeError),
    /// A WebSocket text frame that is not UTF-8.
    #[error("non-UTF-8 text frame")]
    NonUtf8Text,
    /// The first long-polling answer held no Engine.IO handshake.
    #[error("the first polling response held no handshake")]
    NoHandshake,
    /// The upgrade probe succeeded but the upgrade could not complete.
    #[error("upgrade could not complete")]
    UpgradeIncomplete,
}

impl From<ClientCloseReason> for ClientError {
    /// How an Engine.IO session end is reported.
    fn from(reason: ClientCloseReason) -> ClientError {
        match reason {
            ClientCloseReason::HandshakeTimeout(_) | ClientCloseReason::PingTimeout(_) => {
                ClientError::Timeout(Waited::Session(reason))
            }
            ClientCloseReason::ServerClose | ClientCloseReason::ClientClose => {
                ClientError::Transport(LinkFailure::Session(reason))
            }
            ClientCloseReason::Protocol(why) => ClientError::Protocol(ProtocolError::Session(why)),
        }
    }
}
