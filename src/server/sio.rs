//! The Socket.IO layer on top of Engine.IO sessions: decodes packets per connection and
//! dispatches them to namespaces and sockets.

use super::engine::{CloseReason, Conn, ConnHandler, EngineHandler, Incoming};
use super::namespace::Namespace;
use super::socket::{DisconnectReason, Membership, Socket, encode};
use crate::engineio::{Str, generate_sid};
use crate::queue::Class;
use crate::socketio::{Decoder, DecoderLimits, Packet, ServerAction, ServerNamespaces};
use crate::sync::{lock, read, write};
use serde_json::Value;
use std::collections::HashMap;
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
    pub(super) fn of(&self, name: &str) -> Namespace {
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
        let joined = ServerNamespaces::new(std::time::Instant::now(), self.connect_timeout);
        let deadline = joined.poll_timeout();
        let sio = Arc::new(SioConn {
            namespaces: self.namespaces.clone(),
            decoder: Mutex::new(Decoder::new(self.limits)),
            joined: Mutex::new(joined),
        });
        // A client must ask for a namespace within the connect timeout.
        let weak_conn = Arc::downgrade(conn);
        let weak_sio = Arc::downgrade(&sio);
        if let Some(deadline) = deadline {
            tokio::spawn(async move {
                tokio::time::sleep_until(deadline.into()).await;
                if let (Some(conn), Some(sio)) = (weak_conn.upgrade(), weak_sio.upgrade())
                    && lock(&sio.joined).handle_timeout(std::time::Instant::now())
                {
                    tracing::debug!(sid = %conn.sid().as_str(), "no namespace joined in time");
                    conn.close(CloseReason::ForcedClose);
                }
            });
        }
        sio
    }
}

/// One Engine.IO connection's Socket.IO state: its decoder and the sockets of the namespaces it
/// joined (the session rules: [`ServerNamespaces`]).
pub(crate) struct SioConn {
    namespaces: Arc<RwLock<HashMap<String, Namespace>>>,
    decoder: Mutex<Decoder>,
    joined: Mutex<ServerNamespaces<Socket>>,
}

impl Membership for SioConn {
    fn namespaces(&self) -> usize {
        lock(&self.joined).joined()
    }

    fn forget(&self, nsp: &str) {
        lock(&self.joined).leave(nsp);
    }
}

impl SioConn {
    fn dispatch(self: &Arc<Self>, conn: &Arc<Conn>, packet: Packet) {
        let namespaces = &self.namespaces;
        let action =
            lock(&self.joined).handle_packet(packet, |nsp| lookup(namespaces, nsp).is_some());
        match action {
            None => {}
            Some(ServerAction::Join { nsp, auth }) => self.join(conn, nsp, auth),
            Some(ServerAction::Reply(p)) => {
                conn.enqueue(Arc::new(encode(&p)), Class::Control);
            }
            Some(ServerAction::Leave(socket)) => {
                socket.leave_namespace(Some(DisconnectReason::ClientNamespaceDisconnect))
            }
            Some(ServerAction::Event {
                socket,
                name,
                args,
                ack,
            }) => socket.handle_event(&name, args, ack),
            Some(ServerAction::Ack { socket, id, args }) => socket.handle_ack(id, args),
            Some(ServerAction::Close) => conn.close(CloseReason::ParseError),
        }
    }

    fn join(self: &Arc<Self>, conn: &Arc<Conn>, nsp: Str, auth: Value) {
        let Some(ns) = lookup(&self.namespaces, nsp.as_str()) else {
            return;
        };
        let sid = match generate_sid() {
            Ok(sid) => Str::from(sid),
            Err(e) => {
                tracing::error!("no randomness for a socket id: {e}");
                conn.close(CloseReason::ForcedClose);
                return;
            }
        };
        let membership: Weak<dyn Membership> = Arc::downgrade(self) as Weak<SioConn>;
        let socket = Socket::new(sid.clone(), ns.clone(), conn.clone(), membership, auth);
        lock(&self.joined).joining(nsp.clone(), socket.clone());
        ns.insert_socket(&socket);
        socket.join(sid.as_str());
        let verdict = match ns.connect_handler() {
            Some(handler) => handler(&socket, socket.auth()),
            None => Ok(()),
        };
        match verdict {
            Ok(()) => {
                let ok = lock(&self.joined).accept(nsp.as_str(), sid.as_str());
                conn.enqueue(Arc::new(encode(&ok)), Class::Control);
                socket.confirm();
            }
            Err(data) => {
                socket.reject();
                let refused = lock(&self.joined).reject(nsp.as_str(), data);
                conn.enqueue(Arc::new(encode(&refused)), Class::Control);
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
        let sockets = lock(&self.joined).leave_all();
        for s in sockets {
            s.leave_namespace(Some(reason.into()));
        }
    }
}
