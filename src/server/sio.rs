//! The Socket.IO layer on top of Engine.IO sessions: decodes packets per connection and
//! dispatches them to namespaces and sockets.

use super::engine::{CloseReason, Conn, ConnHandler, EngineHandler, Incoming};
use super::namespace::Namespace;
use super::socket::{DisconnectReason, Membership, Socket, encode};
use crate::engineio::{Str, generate_sid};
use crate::queue::Class;
use crate::socketio::{Decoder, DecoderLimits, Packet, PacketKind};
use crate::sync::{lock, read, write};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

/// Server-wide Socket.IO state: the namespaces.
pub(crate) struct SioServer {
    pub namespaces: Arc<RwLock<HashMap<String, Namespace>>>,
    pub connect_timeout: Duration,
    pub limits: DecoderLimits,
}

fn lookup(namespaces: &RwLock<HashMap<String, Namespace>>, name: &str) -> Option<Namespace> {
    read(namespaces).get(name).cloned()
}

impl SioServer {
    /// The namespace `name`, created on first use.
    pub fn of(&self, name: &str) -> Namespace {
        if let Some(ns) = lookup(&self.namespaces, name) {
            return ns;
        }
        write(&self.namespaces)
            .entry(name.to_owned())
            .or_insert_with(|| Namespace::new(name))
            .clone()
    }
}

impl EngineHandler for SioServer {
    fn open(self: &SioServer, conn: &Arc<Conn>) -> Arc<dyn ConnHandler> {
        let sio = Arc::new(SioConn {
            namespaces: self.namespaces.clone(),
            decoder: Mutex::new(Decoder::new(self.limits)),
            sockets: Mutex::new(HashMap::new()),
            joined: AtomicBool::new(false),
        });
        // A client must join a namespace within the connect timeout.
        let weak_conn = Arc::downgrade(conn);
        let weak_sio = Arc::downgrade(&sio);
        let timeout = self.connect_timeout;
        tokio::spawn(async move {
            tokio::time::sleep(timeout).await;
            if let (Some(conn), Some(sio)) = (weak_conn.upgrade(), weak_sio.upgrade())
                && !sio.joined.load(Ordering::Acquire)
            {
                tracing::debug!(sid = %conn.sid().as_str(), "no namespace joined in time");
                conn.close(CloseReason::ForcedClose);
            }
        });
        sio
    }
}

/// One Engine.IO connection's Socket.IO state: its decoder and its socket per namespace.
pub(crate) struct SioConn {
    namespaces: Arc<RwLock<HashMap<String, Namespace>>>,
    decoder: Mutex<Decoder>,
    sockets: Mutex<HashMap<Str, Socket>>,
    joined: AtomicBool,
}

impl Membership for SioConn {
    fn namespaces(&self) -> usize {
        lock(&self.sockets).len()
    }

    fn forget(&self, nsp: &str) {
        lock(&self.sockets).remove(&Str::from(nsp));
    }
}

impl SioConn {
    fn socket(&self, nsp: &Str) -> Option<Socket> {
        lock(&self.sockets).get(nsp).cloned()
    }

    fn dispatch(self: &Arc<Self>, conn: &Arc<Conn>, packet: Packet) {
        match packet.kind {
            PacketKind::Connect => self.connect(conn, packet),
            PacketKind::Disconnect => {
                if let Some(s) = self.socket(&packet.nsp) {
                    s.leave_namespace(Some(DisconnectReason::ClientNamespaceDisconnect));
                }
            }
            PacketKind::Event | PacketKind::BinaryEvent => {
                let Some(socket) = self.socket(&packet.nsp) else {
                    return;
                };
                let (Some(name), Some(args)) = (packet.event_name(), packet.args()) else {
                    conn.close(CloseReason::ParseError);
                    return;
                };
                socket.handle_event(name, args, packet.id);
            }
            PacketKind::Ack | PacketKind::BinaryAck => {
                let (Some(socket), Some(id), Some(args)) =
                    (self.socket(&packet.nsp), packet.id, packet.args())
                else {
                    return;
                };
                socket.handle_ack(id, args);
            }
            PacketKind::ConnectError => conn.close(CloseReason::ParseError),
        }
    }

    fn connect(self: &Arc<Self>, conn: &Arc<Conn>, packet: Packet) {
        let nsp = packet.nsp.as_str();
        let Some(ns) = lookup(&self.namespaces, nsp) else {
            let err = Packet::connect_error(nsp, json!({ "message": "Invalid namespace" }));
            conn.push(Arc::new(encode(&err)), Class::Control);
            return;
        };
        if self.socket(&packet.nsp).is_some() {
            return;
        }
        let sid = match generate_sid() {
            Ok(sid) => Str::from(sid),
            Err(e) => {
                tracing::error!("no randomness for a socket id: {e}");
                conn.close(CloseReason::ForcedClose);
                return;
            }
        };
        let auth = packet.data.unwrap_or_else(|| json!({}));
        let membership: Weak<dyn Membership> = Arc::downgrade(self) as Weak<SioConn>;
        let socket = Socket::new(sid.clone(), ns.clone(), conn.clone(), membership, auth);
        lock(&self.sockets).insert(packet.nsp.clone(), socket.clone());
        self.joined.store(true, Ordering::Release);
        ns.insert_socket(&socket);
        socket.join(sid.as_str());
        let verdict = match ns.connect_handler() {
            Some(handler) => handler(&socket, socket.auth()),
            None => Ok(()),
        };
        match verdict {
            Ok(()) => {
                let ok = Packet::connect(nsp, Some(json!({ "sid": sid.as_str() })));
                conn.push(Arc::new(encode(&ok)), Class::Control);
                socket.confirm();
            }
            Err(data) => {
                socket.reject();
                let data = match data {
                    Value::Object(_) => data,
                    other => json!({ "message": other }),
                };
                conn.push(
                    Arc::new(encode(&Packet::connect_error(nsp, data))),
                    Class::Control,
                );
            }
        }
    }
}

impl ConnHandler for SioConn {
    fn message(self: Arc<Self>, conn: &Arc<Conn>, msg: Incoming) {
        let decoded = {
            let mut decoder = lock(&self.decoder);
            match msg {
                Incoming::Text(text) => decoder.feed_text(text),
                Incoming::Binary(data) => decoder.feed_binary(data),
            }
        };
        match decoded {
            Ok(Some(packet)) => self.dispatch(conn, packet),
            Ok(None) => {}
            Err(e) => {
                tracing::debug!(sid = %conn.sid().as_str(), "bad socket.io packet: {e}");
                conn.close(CloseReason::ParseError);
            }
        }
    }

    fn close(self: Arc<Self>, _conn: &Arc<Conn>, reason: CloseReason) {
        let sockets: Vec<Socket> = lock(&self.sockets).drain().map(|(_, s)| s).collect();
        for s in sockets {
            s.leave_namespace(Some(reason.into()));
        }
    }
}
