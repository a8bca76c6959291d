//! A Socket.IO socket: one client connected to one namespace.

use super::encoded::EncodedPacket;
use super::engine::{CloseReason, Conn};
use super::namespace::{Broadcast, Namespace};
use crate::engineio::Str;
use crate::queue::{Class, Push};
use crate::socketio::{AckTable, Arg, MAX_PENDING_ACKS, Packet};
use crate::sync::{lock, read, write};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Handles an event: the socket, the arguments (binary ones as [`Arg::Binary`]) and, when the
/// client asked for one, the ack to answer with.
pub type EventHandler = Arc<dyn Fn(&Socket, Vec<Arg>, Option<AckSender>) + Send + Sync>;

/// Told once when a socket leaves its namespace, with the reason.
pub type DisconnectHandler = Arc<dyn Fn(&Socket, DisconnectReason) + Send + Sync>;

/// Why a socket left its namespace (the strings are Socket.IO's).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client sent DISCONNECT for this namespace.
    ClientNamespaceDisconnect,
    /// [`Socket::disconnect`] was called.
    ServerNamespaceDisconnect,
    /// The client closed the connection.
    TransportClose,
    /// The connection failed (I/O error, aborted or concurrent poll).
    TransportError,
    /// The client stopped answering pings.
    PingTimeout,
    /// The client sent something that does not decode.
    ParseError,
    /// The server is shutting down.
    ServerShuttingDown,
    /// The client could not keep up with control packets (its queue overflowed), or the server
    /// closed the connection.
    ForcedServerClose,
}

impl DisconnectReason {
    /// The Socket.IO reason string (as seen by Node and Python servers' handlers).
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedServerClose => "forced server close",
        }
    }
}

impl From<CloseReason> for DisconnectReason {
    fn from(r: CloseReason) -> Self {
        match r {
            CloseReason::TransportClose => DisconnectReason::TransportClose,
            CloseReason::TransportError => DisconnectReason::TransportError,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ServerShuttingDown => DisconnectReason::ServerShuttingDown,
            CloseReason::ForcedClose | CloseReason::QueueOverflow => {
                DisconnectReason::ForcedServerClose
            }
        }
    }
}

/// Why an emit did not reach the client's queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EmitError {
    /// The socket is disconnected.
    #[error("socket disconnected")]
    Disconnected,
    /// Dropped by the queue policy (media/volatile while the client is behind).
    #[error("dropped: the client cannot keep up")]
    Dropped,
    /// A control packet overflowed the queue: the connection was closed.
    #[error("queue overflow: the connection was closed")]
    Overflow,
    /// Too many acks are outstanding on this socket.
    #[error("too many pending acks")]
    TooManyAcks,
}

/// Why an ack did not arrive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No answer within the timeout.
    #[error("ack timed out")]
    Timeout,
    /// The socket disconnected before answering.
    #[error("socket disconnected before the ack")]
    Disconnected,
    /// The event could not be sent.
    #[error(transparent)]
    Emit(#[from] EmitError),
}

/// The connection a socket belongs to, as the socket sees it: the Socket.IO state of one
/// Engine.IO connection (`sio.rs`), which owns its sockets and is held weakly by them.
pub(crate) trait Membership: Send + Sync {
    /// Namespaces the connection is still in.
    fn namespaces(&self) -> usize;
    /// The socket of namespace `nsp` left.
    fn forget(&self, nsp: &str);
}

/// A packet waiting to be queued, with its drop class.
type Queued = (Arc<EncodedPacket>, Class);

pub(crate) struct SocketInner {
    pub sid: Str,
    pub ns: Namespace,
    pub conn: Arc<Conn>,
    sio: Weak<dyn Membership>,
    auth: Value,
    handlers: RwLock<HashMap<String, EventHandler>>,
    on_disconnect: Mutex<Vec<DisconnectHandler>>,
    rooms: Mutex<HashSet<Str>>,
    /// Who waits for which ack from the client.
    acks: Mutex<AckTable<oneshot::Sender<Vec<Arg>>>>,
    connected: AtomicBool,
    /// Packets emitted by the connect handler before the CONNECT answer went out.
    early: Mutex<Option<Vec<Queued>>>,
    /// Set once `early` is flushed: the broadcast hot path then skips its lock.
    confirmed: AtomicBool,
}

/// One client in one namespace. Cheap to clone (a handle).
#[derive(Clone)]
pub struct Socket {
    pub(crate) inner: Arc<SocketInner>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("sid", &self.inner.sid)
            .field("nsp", &self.inner.ns.name())
            .finish()
    }
}

impl Socket {
    pub(crate) fn new(
        sid: Str,
        ns: Namespace,
        conn: Arc<Conn>,
        sio: Weak<dyn Membership>,
        auth: Value,
    ) -> Socket {
        Socket {
            inner: Arc::new(SocketInner {
                sid,
                ns,
                conn,
                sio,
                auth,
                handlers: RwLock::new(HashMap::new()),
                on_disconnect: Mutex::new(Vec::new()),
                rooms: Mutex::new(HashSet::new()),
                acks: Mutex::new(AckTable::new(MAX_PENDING_ACKS)),
                connected: AtomicBool::new(true),
                early: Mutex::new(Some(Vec::new())),
                confirmed: AtomicBool::new(false),
            }),
        }
    }

    /// The socket id (distinct from the Engine.IO session id, as in Socket.IO v5).
    pub fn id(&self) -> &str {
        self.inner.sid.as_str()
    }

    /// The namespace this socket belongs to.
    pub fn namespace(&self) -> &Namespace {
        &self.inner.ns
    }

    /// The auth payload of the client's CONNECT (`{}` when it sent none).
    pub fn auth(&self) -> &Value {
        &self.inner.auth
    }

    /// The underlying Engine.IO connection (transport, session id).
    pub fn conn(&self) -> &Arc<Conn> {
        &self.inner.conn
    }

    /// True until the socket leaves its namespace.
    pub fn connected(&self) -> bool {
        self.inner.connected.load(Ordering::Acquire)
    }

    /// Registers the handler of `event` (replacing any previous one).
    pub fn on(
        &self,
        event: impl Into<String>,
        handler: impl Fn(&Socket, Vec<Arg>, Option<AckSender>) + Send + Sync + 'static,
    ) {
        write(&self.inner.handlers).insert(event.into(), Arc::new(handler));
    }

    /// Registers a handler told when the socket leaves its namespace.
    pub fn on_disconnect(
        &self,
        handler: impl Fn(&Socket, DisconnectReason) + Send + Sync + 'static,
    ) {
        lock(&self.inner.on_disconnect).push(Arc::new(handler));
    }

    /// Sends an event to this client (control class: never dropped, overflow disconnects).
    pub fn emit(&self, event: &str, args: Vec<Arg>) -> Result<(), EmitError> {
        self.emit_class(event, args, Class::Control)
    }

    /// Sends an event that may be dropped when the client is behind.
    pub fn emit_volatile(&self, event: &str, args: Vec<Arg>) -> Result<(), EmitError> {
        self.emit_class(event, args, Class::Volatile)
    }

    /// Sends an event with an explicit drop class (e.g. a video frame).
    pub fn emit_class(&self, event: &str, args: Vec<Arg>, class: Class) -> Result<(), EmitError> {
        let packet = Packet::event(self.inner.ns.name(), event, args, None);
        self.emit_shared(Arc::new(encode(&packet)), class)
    }

    /// Queues a pre-encoded packet (see [`Namespace::encode_event`]); the bytes are shared.
    pub fn emit_shared(&self, packet: Arc<EncodedPacket>, class: Class) -> Result<(), EmitError> {
        if !self.inner.confirmed.load(Ordering::Acquire)
            && let Some(early) = lock(&self.inner.early).as_mut()
        {
            early.push((packet, class));
            return Ok(());
        }
        if !self.connected() {
            return Err(EmitError::Disconnected);
        }
        match self.inner.conn.enqueue(packet, class) {
            Push::Queued => Ok(()),
            Push::Dropped if self.inner.conn.is_closed() => Err(EmitError::Disconnected),
            Push::Dropped => Err(EmitError::Dropped),
            Push::Overflow => Err(EmitError::Overflow),
        }
    }

    /// Sends an event and waits (at most `timeout`) for the client's ack.
    pub async fn emit_with_ack(
        &self,
        event: &str,
        args: Vec<Arg>,
        timeout: Duration,
    ) -> Result<Vec<Arg>, AckError> {
        let (tx, rx) = oneshot::channel();
        let id = lock(&self.inner.acks)
            .register(tx, Instant::now(), timeout)
            .map_err(|_| EmitError::TooManyAcks)?;
        let packet = Packet::event(self.inner.ns.name(), event, args, Some(id));
        if let Err(e) = self.emit_shared(Arc::new(encode(&packet)), Class::Control) {
            lock(&self.inner.acks).cancel(id);
            return Err(e.into());
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(args)) => Ok(args),
            Ok(Err(_)) => Err(AckError::Disconnected),
            Err(_) => {
                lock(&self.inner.acks).cancel(id);
                Err(AckError::Timeout)
            }
        }
    }

    /// Joins a room.
    pub fn join(&self, room: &str) {
        let room = Str::from(room);
        // Checked under the rooms lock that `leave_namespace` drains: a socket that has left
        // never gets back into a room (where its handle would outlive it).
        let mut rooms = lock(&self.inner.rooms);
        if self.connected() && rooms.insert(room.clone()) {
            self.inner.ns.add_to_room(room, self);
        }
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        let room = Str::from(room);
        if lock(&self.inner.rooms).remove(&room) {
            self.inner.ns.remove_from_room(&room, &self.inner.sid);
        }
    }

    /// The rooms this socket is in (including its own id, as in Socket.IO).
    pub fn rooms(&self) -> Vec<String> {
        lock(&self.inner.rooms)
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect()
    }

    /// A broadcast to everyone in the namespace but this socket.
    pub fn broadcast(&self) -> Broadcast {
        self.inner.ns.except(self.id())
    }

    /// A broadcast to `room`, excluding this socket.
    pub fn to(&self, room: &str) -> Broadcast {
        self.broadcast().to(room)
    }

    /// Disconnects the socket from its namespace: the client gets DISCONNECT (its reason: "io
    /// server disconnect"); when it was the connection's last namespace the connection is
    /// closed too, after that packet is flushed.
    pub fn disconnect(&self) {
        if !self.connected() {
            return;
        }
        let packet = encode(&Packet::disconnect(self.inner.ns.name()));
        let _ = self.inner.conn.enqueue(Arc::new(packet), Class::Control);
        self.leave_namespace(Some(DisconnectReason::ServerNamespaceDisconnect));
        if self.inner.sio.upgrade().is_none_or(|s| s.namespaces() == 0) {
            self.inner.conn.close(CloseReason::ForcedClose);
        }
    }

    /// Delivers the CONNECT answer and what the connect handler emitted.
    pub(crate) fn confirm(&self) {
        self.inner.connected.store(true, Ordering::Release);
        let mut early = lock(&self.inner.early);
        for (packet, class) in early.take().unwrap_or_default() {
            let _ = self.inner.conn.enqueue(packet, class);
        }
        self.inner.confirmed.store(true, Ordering::Release);
    }

    /// Undoes a connection the connect handler rejected: what it emitted is discarded and no
    /// disconnect handler runs.
    pub(crate) fn reject(&self) {
        lock(&self.inner.early).take();
        self.leave_namespace(None);
    }

    pub(crate) fn handle_event(&self, name: &str, args: Vec<Arg>, ack_id: Option<u64>) {
        let handler = read(&self.inner.handlers).get(name).cloned();
        if let Some(handler) = handler {
            let ack = ack_id.map(|id| AckSender {
                socket: self.clone(),
                id,
            });
            handler(self, args, ack);
        }
    }

    pub(crate) fn handle_ack(&self, id: u64, args: Vec<Arg>) {
        if let Some(tx) = lock(&self.inner.acks).resolve(id) {
            let _ = tx.send(args);
        }
    }

    /// Removes the socket from its namespace and rooms and tells the disconnect handlers (when
    /// there is a reason).
    pub(crate) fn leave_namespace(&self, reason: Option<DisconnectReason>) {
        if !self.inner.connected.swap(false, Ordering::AcqRel) {
            return;
        }
        let rooms: Vec<Str> = lock(&self.inner.rooms).drain().collect();
        for room in &rooms {
            self.inner.ns.remove_from_room(room, &self.inner.sid);
        }
        self.inner.ns.remove_socket(&self.inner.sid);
        if let Some(sio) = self.inner.sio.upgrade() {
            sio.forget(self.inner.ns.name());
        }
        lock(&self.inner.acks).clear();
        let handlers = std::mem::take(&mut *lock(&self.inner.on_disconnect));
        if let Some(reason) = reason {
            for h in handlers {
                h(self, reason);
            }
        }
    }
}

/// Answers an event the client sent with an ack id. Dropping it without sending is allowed
/// (the client's ack then times out on its side).
pub struct AckSender {
    socket: Socket,
    id: u64,
}

impl AckSender {
    /// Sends the ack (a BINARY_ACK when any argument is binary).
    pub fn send(self, args: Vec<Arg>) -> Result<(), EmitError> {
        let packet = Packet::ack(self.socket.inner.ns.name(), self.id, args);
        self.socket
            .emit_shared(Arc::new(encode(&packet)), Class::Control)
    }
}

/// Encodes a Socket.IO packet into its shared Engine.IO form.
pub(crate) fn encode(packet: &Packet) -> EncodedPacket {
    let encoded = packet.encode();
    EncodedPacket::message(encoded.text, encoded.attachments)
}
