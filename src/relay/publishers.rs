//! The publisher side of the relay: gateways (or anything speaking the contract) connect to the
//! publisher namespace with `{token, device}`, then send `announce`, `media` and `status`.
//!
//! - Each device's streams are re-published as `<device>/<stream>`, so two boards that both call
//!   their camera `cam0` do not collide, and a publisher can only ever touch its own streams.
//! - A second connection of a device that is already live either replaces the first or is refused
//!   (`duplicate_publisher`).
//! - When a publisher drops, its tracks go `down` at once and its streams are withdrawn only after
//!   a grace period, so viewers keep their `watch` across the gateway's reconnection and resume at
//!   the next keyframe.

use crate::config::DuplicatePublisher;
use crate::contract::{Announce, Codec, MediaFrame, MediaMeta, Status, TrackState};
use crate::server::{Namespace, Socket};
use crate::service::viewers::ViewerHub;
use crate::socketio::Arg;
use crate::sync::{lock, read, write};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

/// How long a disconnected publisher's streams stay listed (tracks `down`) before they are withdrawn.
const WITHDRAW_GRACE: Duration = Duration::from_secs(30);

/// Who may publish, and who is publishing now.
pub(super) struct Publishers {
    tokens: RwLock<BTreeMap<String, String>>,
    policy: DuplicatePublisher,
    live: Mutex<HashMap<String, Live>>,
}

/// A connected publisher: its socket and the codecs of the tracks it announced, per stream.
struct Live {
    socket: Socket,
    streams: HashMap<String, HashMap<String, Codec>>,
}

impl Publishers {
    /// The registry for `tokens` (device id → token).
    pub(super) fn new(tokens: BTreeMap<String, String>, policy: DuplicatePublisher) -> Arc<Self> {
        Arc::new(Publishers {
            tokens: RwLock::new(tokens),
            policy,
            live: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the accepted tokens (config reload); connected publishers stay connected.
    pub(super) fn set_tokens(&self, tokens: BTreeMap<String, String>) {
        *write(&self.tokens) = tokens;
    }

    /// Connected publishers.
    pub(super) fn count(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Live>> {
        lock(&self.live)
    }

    /// Checks the CONNECT auth; `Ok(device)` or the CONNECT_ERROR payload.
    fn admit(&self, socket: &Socket, auth: &Value) -> Result<String, Value> {
        let device = auth.get("device").and_then(Value::as_str).unwrap_or("");
        let token = auth.get("token").and_then(Value::as_str).unwrap_or("");
        if device.is_empty() || token.is_empty() {
            return Err(json!({"message": "publisher auth must carry {token, device}"}));
        }
        let valid = read(&self.tokens).get(device).is_some_and(|t| t == token);
        if !valid {
            tracing::warn!(device, "publisher rejected: invalid token");
            return Err(json!({"message": format!("invalid token for device {device:?}")}));
        }
        let previous = {
            let mut live = self.lock();
            if let Some(old) = live.get(device)
                && self.policy == DuplicatePublisher::Refuse
                && old.socket.connected()
            {
                return Err(json!({"message": format!("device {device:?} is already publishing")}));
            }
            live.insert(
                device.to_owned(),
                Live {
                    socket: socket.clone(),
                    streams: HashMap::new(),
                },
            )
        };
        if let Some(old) = previous {
            tracing::info!(device, "publisher replaced by a new connection");
            old.socket.disconnect();
        }
        Ok(device.to_owned())
    }

    /// The codec of `track` of `stream` as `device` announced it, if `socket` is still the
    /// device's live publisher.
    fn codec(&self, device: &str, socket: &Socket, stream: &str, track: &str) -> Option<Codec> {
        let live = self.lock();
        let p = live.get(device).filter(|p| p.socket.id() == socket.id())?;
        p.streams.get(stream)?.get(track).copied()
    }
}

/// The relay-wide id of a device's stream.
fn relay_id(device: &str, stream: &str) -> String {
    format!("{device}/{stream}")
}

fn first_json(args: &[Arg]) -> Option<&Value> {
    match args.first() {
        Some(Arg::Json(v)) => Some(v),
        _ => None,
    }
}

/// Serves the publisher contract on `ns`, feeding `hub`.
pub(super) fn serve(ns: &Namespace, hub: Arc<ViewerHub>, publishers: Arc<Publishers>) {
    ns.on_connect(move |socket, auth| {
        let device = publishers.admit(socket, auth)?;
        tracing::info!(device, sid = socket.id(), "publisher connected");
        on_announce(socket, &hub, &publishers, &device);
        on_media(socket, &hub, &publishers, &device);
        on_status(socket, &hub, &publishers, &device);
        on_disconnect(socket, &hub, &publishers, &device);
        Ok(())
    });
}

fn on_announce(socket: &Socket, hub: &Arc<ViewerHub>, publishers: &Arc<Publishers>, device: &str) {
    let (hub, publishers, device) = (hub.clone(), publishers.clone(), device.to_owned());
    socket.on("announce", move |socket, args, ack| {
        let parsed =
            first_json(&args).and_then(|v| serde_json::from_value::<Announce>(v.clone()).ok());
        let reply = match parsed {
            None => json!({"error": "announce must be {stream, tracks}"}),
            Some(mut announce) => {
                let local = announce.stream.clone();
                let codecs = announce
                    .tracks
                    .iter()
                    .map(|t| (t.track.clone(), t.codec))
                    .collect();
                announce.stream = relay_id(&device, &local);
                {
                    let mut live = publishers.lock();
                    match live
                        .get_mut(&device)
                        .filter(|p| p.socket.id() == socket.id())
                    {
                        Some(p) => {
                            p.streams.insert(local, codecs);
                        }
                        None => return,
                    }
                }
                match hub.announce(announce) {
                    Ok(()) => json!({"ok": true}),
                    Err(e) => json!({"error": e.to_string()}),
                }
            }
        };
        if let Some(ack) = ack {
            let _ = ack.send(vec![Arg::Json(reply)]);
        }
    });
}

fn on_media(socket: &Socket, hub: &Arc<ViewerHub>, publishers: &Arc<Publishers>, device: &str) {
    let (hub, publishers, device) = (hub.clone(), publishers.clone(), device.to_owned());
    socket.on("media", move |socket, args, _| {
        let (Some(meta), Some(Arg::Binary(data))) = (
            first_json(&args).and_then(|v| serde_json::from_value::<MediaMeta>(v.clone()).ok()),
            args.get(1),
        ) else {
            tracing::debug!(device, "malformed media event ignored");
            return;
        };
        let Some(codec) = publishers.codec(&device, socket, &meta.stream, &meta.track) else {
            tracing::debug!(
                device,
                stream = meta.stream,
                "media for an unannounced track ignored"
            );
            return;
        };
        let frame = MediaFrame {
            stream: relay_id(&device, &meta.stream).into(),
            track: meta.track.as_str().into(),
            codec,
            pts: meta.pts,
            duration: 0,
            key: meta.key,
            t: meta.t,
            data: data.clone(),
        };
        if let Err(e) = hub.publish(frame) {
            tracing::debug!(device, error = %e, "frame not published");
        }
    });
}

fn on_status(socket: &Socket, hub: &Arc<ViewerHub>, publishers: &Arc<Publishers>, device: &str) {
    let (hub, publishers, device) = (hub.clone(), publishers.clone(), device.to_owned());
    socket.on("status", move |socket, args, _| {
        let Some(mut status) =
            first_json(&args).and_then(|v| serde_json::from_value::<Status>(v.clone()).ok())
        else {
            return;
        };
        if publishers
            .codec(&device, socket, &status.stream, &status.track)
            .is_none()
        {
            return;
        }
        status.stream = relay_id(&device, &status.stream);
        if let Err(e) = hub.status(status) {
            tracing::debug!(device, error = %e, "status not applied");
        }
    });
}

fn on_disconnect(
    socket: &Socket,
    hub: &Arc<ViewerHub>,
    publishers: &Arc<Publishers>,
    device: &str,
) {
    let (hub, publishers, device) = (hub.clone(), publishers.clone(), device.to_owned());
    socket.on_disconnect(move |socket, reason| {
        tracing::info!(device, reason = reason.as_str(), "publisher disconnected");
        let streams = {
            let mut live = publishers.lock();
            match live.get(&device) {
                Some(p) if p.socket.id() == socket.id() => {
                    live.remove(&device).map(|p| p.streams).unwrap_or_default()
                }
                // Replaced by a newer connection, which now owns the streams.
                _ => return,
            }
        };
        for (stream, tracks) in &streams {
            for track in tracks.keys() {
                let _ = hub.status(Status {
                    stream: relay_id(&device, stream),
                    track: track.clone(),
                    state: TrackState::Down,
                    reason: "publisher disconnected".into(),
                });
            }
        }
        let (hub, publishers, device) = (hub.clone(), publishers.clone(), device.clone());
        let withdraw = async move {
            tokio::time::sleep(WITHDRAW_GRACE).await;
            let back = publishers.lock().contains_key(&device);
            for stream in streams.keys() {
                let announced_again = back
                    && publishers
                        .lock()
                        .get(&device)
                        .is_some_and(|p| p.streams.contains_key(stream));
                if !announced_again {
                    let _ = hub.withdraw(&relay_id(&device, stream));
                }
            }
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(withdraw);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_ids_are_namespaced_by_device() {
        assert_eq!(relay_id("garage-pi", "cam0"), "garage-pi/cam0");
    }
}
