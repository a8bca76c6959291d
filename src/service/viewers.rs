//! The viewer contract bound to a Socket.IO namespace of our server — the gateway's LAN server
//! and `sioedge relay` serve viewers with this same code (publishers there come from the network
//! instead of GStreamer; nothing here knows about capture).
//!
//! Each viewer socket becomes a hub receiver whose queue is the connection's own
//! [`OutQueue`](crate::queue::OutQueue) (one queue per viewer, in front of its socket), and each
//! event is encoded once for the namespace and shared by every viewer.

use super::secret::secrets_match;
use crate::config::ViewerAuth;
use crate::contract::{ContractEvent, STREAMS, UNWATCH, WATCH};
use crate::hub::{Adapter, CacheLimits, Hub, SharedEvent, Sink, requests};
use crate::queue::{Class, Push};
use crate::server::{EmitError, EncodedPacket, Namespace, Socket};
use crate::socketio::Arg;
use serde_json::{Value, json};
use std::sync::Arc;

/// The wire form of hub events on our server: a Socket.IO packet encoded once.
pub(crate) type Wire = Arc<EncodedPacket>;

/// A hub serving viewers of our server.
pub(crate) type ViewerHub = Hub<Wire>;

/// A hub whose events are encoded for namespace `ns` (where [`serve`] binds the contract).
pub(crate) fn hub(
    ns: &Namespace,
    adapter: Arc<dyn Adapter>,
    limits: CacheLimits,
) -> Arc<ViewerHub> {
    let ns = ns.clone();
    Arc::new(Hub::new(
        move |e: &ContractEvent| encode(&ns, e),
        adapter,
        limits,
    ))
}

/// Encodes a contract event as one Socket.IO packet of `ns` (the frame stays shared, not copied).
fn encode(ns: &Namespace, event: &ContractEvent) -> Wire {
    // The hub's JSON comes from serde and always parses; `null` would only hide a bug, not crash.
    let first = serde_json::from_str(&event.json).unwrap_or(Value::Null);
    let mut args = vec![Arg::Json(first)];
    args.extend(event.binary.iter().cloned().map(Arg::Binary));
    ns.encode_event(event.name, args)
}

/// A viewer socket as a hub receiver: pushes go straight into its connection's bounded queue.
struct SocketSink(Socket);

impl Sink<Wire> for SocketSink {
    fn offer(&self, packet: &SharedEvent<Wire>, class: Class, _bytes: usize) -> Push {
        match self.0.emit_shared(packet.wire.clone(), class) {
            Ok(()) => Push::Queued,
            Err(EmitError::Overflow) => Push::Overflow,
            Err(_) => Push::Dropped,
        }
    }
}

/// Who may watch: the configured token or password, checked against the CONNECT auth payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Access {
    /// Anyone on the network.
    Open,
    /// CONNECT auth must carry `{token}` equal to this.
    Token(String),
    /// CONNECT auth must carry `{password}` equal to this.
    Password(String),
}

impl From<Option<ViewerAuth<'_>>> for Access {
    fn from(auth: Option<ViewerAuth<'_>>) -> Self {
        match auth {
            None => Access::Open,
            Some(ViewerAuth::Token(t)) => Access::Token(t.to_owned()),
            Some(ViewerAuth::Password(p)) => Access::Password(p.to_owned()),
        }
    }
}

impl Access {
    /// `Err` with the CONNECT_ERROR payload when `auth` does not grant access.
    pub(super) fn check(&self, auth: &Value) -> Result<(), Value> {
        let (field, secret) = match self {
            Access::Open => return Ok(()),
            Access::Token(t) => ("token", t),
            Access::Password(p) => ("password", p),
        };
        match auth.get(field).and_then(Value::as_str) {
            Some(given) if secrets_match(given, secret) => Ok(()),
            Some(_) => Err(json!({ "message": format!("invalid viewer {field}") })),
            None => Err(json!({ "message": format!("viewer {field} required") })),
        }
    }
}

/// The JSON arguments of an incoming event (binary arguments read as `null`).
fn json_args(args: Vec<Arg>) -> Vec<Value> {
    args.into_iter()
        .map(|a| match a {
            Arg::Json(v) => v,
            Arg::Binary(_) => Value::Null,
        })
        .collect()
}

/// Serves the viewer contract on `ns`: `streams`, `watch`, `unwatch` with acks; the hub then sends
/// each viewer `announce`, `status` and `media`.
pub(crate) fn serve(ns: &Namespace, hub: Arc<ViewerHub>, access: Access) {
    ns.on_connect(move |socket, auth| {
        access.check(auth)?;
        let id = hub.add_receiver(Arc::new(SocketSink(socket.clone())), false);
        let h = hub.clone();
        socket.on(STREAMS, move |_, _, ack| {
            if let Some(ack) = ack {
                let _ = ack.send(vec![Arg::Json(requests::on_streams(&h))]);
            }
        });
        let h = hub.clone();
        socket.on(WATCH, move |_, args, ack| {
            let reply = requests::on_watch(&h, id, &json_args(args));
            if let Some(ack) = ack {
                let _ = ack.send(vec![Arg::Json(reply)]);
            }
        });
        let h = hub.clone();
        socket.on(UNWATCH, move |_, args, ack| {
            let reply = requests::on_unwatch(&h, id, &json_args(args));
            if let Some(ack) = ack {
                let _ = ack.send(vec![Arg::Json(reply)]);
            }
        });
        let h = hub.clone();
        socket.on_disconnect(move |_, _| {
            // This can run inside a hub call: an offer that overflows this viewer's queue closes
            // the connection right there. Leave the hub from outside its lock.
            let h = h.clone();
            match tokio::runtime::Handle::try_current() {
                Ok(rt) => drop(rt.spawn(async move { h.remove_receiver(id) })),
                Err(_) => drop(std::thread::spawn(move || h.remove_receiver(id))),
            }
        });
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_checks_the_connect_auth_payload() {
        assert!(Access::Open.check(&json!({})).is_ok());
        let t = Access::Token("s3cret".into());
        assert!(t.check(&json!({"token": "s3cret"})).is_ok());
        assert_eq!(
            t.check(&json!({"token": "nope"})).unwrap_err()["message"],
            "invalid viewer token"
        );
        assert_eq!(
            t.check(&json!({})).unwrap_err()["message"],
            "viewer token required"
        );
        let p = Access::Password("pw".into());
        assert!(p.check(&json!({"password": "pw"})).is_ok());
        assert!(p.check(&json!({"token": "pw"})).is_err());
    }
}
