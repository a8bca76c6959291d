//! Namespaces, rooms and broadcasts.
//!
//! A broadcast encodes its packet once ([`Namespace::encode_event`]) and queues an `Arc` of the
//! same [`EncodedPacket`] on every receiving connection.

use super::encoded::EncodedPacket;
use super::socket::{Socket, encode};
use crate::engineio::Str;
use crate::queue::Class;
use crate::socketio::{Arg, Packet};
use crate::sync::{read, write};
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};

/// Decides whether a client may join: `Ok` accepts, `Err(data)` answers CONNECT_ERROR with
/// `data` (e.g. `{"message":"not authorized"}`). Register event handlers on the socket here;
/// what it emits is delivered right after the CONNECT answer.
pub type ConnectHandler = Arc<dyn Fn(&Socket, &Value) -> Result<(), Value> + Send + Sync>;

struct NsInner {
    name: Str,
    on_connect: RwLock<Option<ConnectHandler>>,
    sockets: RwLock<HashMap<Str, Socket>>,
    /// Room → its members by socket id. Members are held as handles, so a broadcast to a room
    /// reads them straight out (no second lookup per member); a socket leaves every room when it
    /// leaves the namespace.
    rooms: RwLock<HashMap<Str, HashMap<Str, Socket>>>,
}

/// A namespace (`/`, `/custom`, ...). Cheap to clone (a handle).
#[derive(Clone)]
pub struct Namespace {
    inner: Arc<NsInner>,
}

impl Namespace {
    pub(crate) fn new(name: &str) -> Namespace {
        Namespace {
            inner: Arc::new(NsInner {
                name: Str::from(name),
                on_connect: RwLock::new(None),
                sockets: RwLock::new(HashMap::new()),
                rooms: RwLock::new(HashMap::new()),
            }),
        }
    }

    /// The namespace name, e.g. `/`.
    pub fn name(&self) -> &str {
        self.inner.name.as_str()
    }

    /// Sets the connect handler (without one, every client is accepted).
    pub fn on_connect(
        &self,
        handler: impl Fn(&Socket, &Value) -> Result<(), Value> + Send + Sync + 'static,
    ) {
        *write(&self.inner.on_connect) = Some(Arc::new(handler));
    }

    pub(crate) fn connect_handler(&self) -> Option<ConnectHandler> {
        read(&self.inner.on_connect).clone()
    }

    /// The connected sockets.
    pub fn sockets(&self) -> Vec<Socket> {
        read(&self.inner.sockets).values().cloned().collect()
    }

    /// A socket by id.
    pub fn socket(&self, sid: &str) -> Option<Socket> {
        read(&self.inner.sockets).get(&Str::from(sid)).cloned()
    }

    /// Encodes an event once, for [`Broadcast::emit_shared`] / [`Socket::emit_shared`] to any
    /// number of receivers in this namespace.
    pub fn encode_event(&self, event: &str, args: Vec<Arg>) -> Arc<EncodedPacket> {
        Arc::new(encode(&Packet::event(self.name(), event, args, None)))
    }

    /// A broadcast to every socket of the namespace.
    pub fn broadcast(&self) -> Broadcast {
        Broadcast {
            ns: self.clone(),
            rooms: Vec::new(),
            except: Vec::new(),
        }
    }

    /// A broadcast to the sockets in `room` (a socket id is also a room).
    pub fn to(&self, room: &str) -> Broadcast {
        self.broadcast().to(room)
    }

    /// A broadcast to every socket except those in `room` (e.g. a socket id).
    pub fn except(&self, room: &str) -> Broadcast {
        self.broadcast().except(room)
    }

    /// Sends an event to every socket of the namespace; returns how many queued it.
    pub fn emit(&self, event: &str, args: Vec<Arg>) -> usize {
        self.broadcast().emit(event, args)
    }

    /// Makes every socket leave `room`.
    pub fn close_room(&self, room: &str) {
        let members = write(&self.inner.rooms).remove(&Str::from(room));
        for s in members.into_iter().flat_map(HashMap::into_values) {
            s.leave(room);
        }
    }

    /// The ids of the sockets in `room`.
    pub fn room_members(&self, room: &str) -> Vec<String> {
        read(&self.inner.rooms)
            .get(&Str::from(room))
            .map(|m| m.keys().map(|s| s.as_str().to_owned()).collect())
            .unwrap_or_default()
    }

    pub(crate) fn insert_socket(&self, socket: &Socket) {
        write(&self.inner.sockets).insert(socket.inner.sid.clone(), socket.clone());
    }

    pub(crate) fn remove_socket(&self, sid: &Str) {
        write(&self.inner.sockets).remove(sid);
    }

    pub(crate) fn add_to_room(&self, room: Str, socket: &Socket) {
        write(&self.inner.rooms)
            .entry(room)
            .or_default()
            .insert(socket.inner.sid.clone(), socket.clone());
    }

    pub(crate) fn remove_from_room(&self, room: &Str, sid: &Str) {
        let mut rooms = write(&self.inner.rooms);
        if let Some(members) = rooms.get_mut(room) {
            members.remove(sid);
            if members.is_empty() {
                rooms.remove(room);
            }
        }
    }
}

/// Selects receivers in a namespace: rooms to include (none = everyone) and rooms to exclude.
#[must_use = "a broadcast does nothing until emitted"]
pub struct Broadcast {
    ns: Namespace,
    rooms: Vec<Str>,
    except: Vec<Str>,
}

impl Broadcast {
    /// Adds a room to send to.
    pub fn to(mut self, room: &str) -> Broadcast {
        self.rooms.push(Str::from(room));
        self
    }

    /// Excludes the sockets in `room` (a socket id is also a room).
    pub fn except(mut self, room: &str) -> Broadcast {
        self.except.push(Str::from(room));
        self
    }

    /// The selected sockets.
    pub fn sockets(&self) -> Vec<Socket> {
        let rooms = read(&self.ns.inner.rooms);
        let excluded: HashSet<&Str> = self
            .except
            .iter()
            .filter_map(|r| rooms.get(r))
            .flat_map(HashMap::keys)
            .collect();
        let pick =
            |(sid, socket): (&Str, &Socket)| (!excluded.contains(sid)).then(|| socket.clone());
        match self.rooms.as_slice() {
            [] => read(&self.ns.inner.sockets)
                .iter()
                .filter_map(pick)
                .collect(),
            // The common case (a media room): no de-duplication needed.
            [room] => rooms
                .get(room)
                .map(|members| members.iter().filter_map(pick).collect())
                .unwrap_or_default(),
            _ => {
                let mut seen = HashSet::new();
                self.rooms
                    .iter()
                    .filter_map(|r| rooms.get(r))
                    .flatten()
                    .filter(|(sid, _)| seen.insert(*sid))
                    .filter_map(pick)
                    .collect()
            }
        }
    }

    /// Encodes the event once and sends it to the selection; returns how many queued it.
    pub fn emit(self, event: &str, args: Vec<Arg>) -> usize {
        let packet = self.ns.encode_event(event, args);
        self.emit_shared(packet, Class::Control)
    }

    /// Sends a pre-encoded packet with a drop class (media frames: `Class::Video`/`Audio`);
    /// returns how many receivers queued it (drops by policy are not counted).
    pub fn emit_shared(self, packet: Arc<EncodedPacket>, class: Class) -> usize {
        let mut queued = 0;
        for socket in self.sockets() {
            if socket.emit_shared(packet.clone(), class.clone()).is_ok() {
                queued += 1;
            }
        }
        queued
    }
}
