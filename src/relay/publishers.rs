//! The publisher side of the relay: gateways (or anything speaking the contract) connect to the
//! publisher namespace with `{token, device}`, then send `announce`, `media` and `status`.
//!
//! - Each device's streams are re-published as `<device>/<stream>`, so two boards that both call
//!   their camera `cam0` do not collide, and a publisher can only ever touch its own streams.
//! - Stream and track ids follow the config's id rule ([`is_valid_id`]); tokens are compared in
//!   constant time ([`secrets_match`]).
//! - A second connection of a device that is already live either replaces the first or is refused
//!   (`duplicate_publisher`).
//! - Per device, at most `max_streams_per_publisher` streams on the relay at once, and at most
//!   `max_cache_per_publisher` bytes of late-joiner cache for all of them (a [`CacheBudget`]).
//!   What goes past a limit is refused — an `announce` with an error (its ack, or an `error`
//!   event `{message}` when it asked for none), a keyframe by not being cached (one `error` event
//!   when it starts, then a summary now and then) — and nothing else changes.
//! - When a publisher drops, its tracks go `down` at once and its streams are withdrawn only after
//!   a grace period, so viewers keep their `watch` across the gateway's reconnection and resume at
//!   the next keyframe. Until then they count towards the device's stream limit.

use crate::config::{DuplicatePublisher, ID_RULE, is_valid_id};
use crate::contract::{Announce, Codec, MediaFrame, MediaMeta, Status, TrackKind, TrackState};
use crate::hub::CacheBudget;
use crate::repeats::{Repeats, Report, human};
use crate::server::{Namespace, Socket};
use crate::service::secret::secrets_match;
use crate::service::viewers::ViewerHub;
use crate::socketio::Arg;
use crate::sync::{lock, read, write};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

/// How long a disconnected publisher's streams stay listed (tracks `down`) before they are withdrawn.
const WITHDRAW_GRACE: Duration = Duration::from_secs(30);

/// The per-device limits (`[relay_server]` `max_streams_per_publisher`, `max_cache_per_publisher`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Limits {
    /// Streams on the relay at once.
    pub(super) streams: usize,
    /// Late-joiner cache bytes of all its streams together.
    pub(super) cache: usize,
}

/// Who may publish, who is publishing now, and what each device has on the relay.
pub(super) struct Publishers {
    hub: Arc<ViewerHub>,
    tokens: RwLock<BTreeMap<String, String>>,
    policy: DuplicatePublisher,
    limits: Limits,
    devices: Mutex<HashMap<String, Device>>,
    /// Refused CONNECTs in a row, per device with a token (`""`: devices without one).
    refusals: Mutex<HashMap<String, Repeats>>,
}

/// One device on the relay.
struct Device {
    /// Its connected publisher, if any.
    live: Option<Live>,
    /// Its streams in the hub (announced and not withdrawn yet): track id → codec.
    streams: HashMap<String, HashMap<String, Codec>>,
    /// What the late-joiner cache of its streams may hold.
    budget: Arc<CacheBudget>,
    /// Keyframes its budget refused, as last seen, and the run of them.
    refused: u64,
    over_budget: Repeats,
}

/// A connected publisher and the streams it announced on this connection.
struct Live {
    socket: Socket,
    announced: HashSet<String>,
}

impl Device {
    /// The live publisher if it is `socket`.
    fn live_as(&mut self, socket: &Socket) -> Option<&mut Live> {
        self.live.as_mut().filter(|l| l.socket.id() == socket.id())
    }
}

/// `id` as it may appear in a message: quoted, escaped and cut to 64 characters.
fn shown(id: &str) -> String {
    if id.chars().count() <= 64 {
        format!("{id:?}")
    } else {
        let cut: String = id.chars().take(64).collect();
        format!("{cut:?}… ({} bytes)", id.len())
    }
}

impl Publishers {
    /// The registry for `tokens` (device id → token), feeding `hub`.
    pub(super) fn new(
        hub: Arc<ViewerHub>,
        tokens: BTreeMap<String, String>,
        policy: DuplicatePublisher,
        limits: Limits,
    ) -> Arc<Self> {
        Arc::new(Publishers {
            hub,
            tokens: RwLock::new(tokens),
            policy,
            limits,
            devices: Mutex::new(HashMap::new()),
            refusals: Mutex::new(HashMap::new()),
        })
    }

    /// Replaces the accepted tokens (config reload); connected publishers stay connected.
    pub(super) fn set_tokens(&self, tokens: BTreeMap<String, String>) {
        *write(&self.tokens) = tokens;
    }

    /// Connected publishers.
    pub(super) fn count(&self) -> usize {
        self.lock().values().filter(|d| d.live.is_some()).count()
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Device>> {
        lock(&self.devices)
    }

    /// Checks the CONNECT auth; `Ok(device)` or the CONNECT_ERROR payload.
    fn admit(self: &Arc<Self>, socket: &Socket, auth: &Value) -> Result<String, Value> {
        let device = auth.get("device").and_then(Value::as_str).unwrap_or("");
        let token = auth.get("token").and_then(Value::as_str).unwrap_or("");
        if device.is_empty() || token.is_empty() {
            return Err(json!({"message": "publisher auth must carry {token, device}"}));
        }
        let known = read(&self.tokens).get(device).cloned();
        if !known.as_deref().is_some_and(|t| secrets_match(token, t)) {
            self.refused(device, known.is_some());
            return Err(json!({"message": format!("invalid token for device {}", shown(device))}));
        }
        let previous = {
            let mut devices = self.lock();
            let d = devices.entry(device.to_owned()).or_insert_with(|| Device {
                live: None,
                streams: HashMap::new(),
                budget: CacheBudget::new(self.limits.cache),
                refused: 0,
                over_budget: Repeats::default(),
            });
            if self.policy == DuplicatePublisher::Refuse
                && d.live.as_ref().is_some_and(|l| l.socket.connected())
            {
                return Err(json!({"message": format!("device {device:?} is already publishing")}));
            }
            d.live.replace(Live {
                socket: socket.clone(),
                announced: HashSet::new(),
            })
        };
        if let Some(ended) = lock(&self.refusals)
            .remove(device)
            .and_then(|mut r| r.recovered(Instant::now()))
        {
            tracing::info!(
                device,
                "publisher accepted after {} refused attempts over {}",
                ended.failures,
                human(ended.lasted)
            );
        }
        if let Some(old) = previous {
            tracing::info!(device, "publisher replaced by a new connection");
            self.leave(device, old.announced);
            old.socket.disconnect();
        }
        Ok(device.to_owned())
    }

    /// Logs a refused CONNECT: the first of a run at WARN, then summaries.
    fn refused(&self, device: &str, known: bool) {
        // Unknown devices share one entry: a scan of made-up names cannot grow the map.
        let key = if known { device } else { "" };
        let report = lock(&self.refusals)
            .entry(key.to_owned())
            .or_default()
            .failed(Instant::now());
        let device = shown(device);
        match report {
            Some(Report::First) => {
                tracing::warn!("publisher {device} refused: invalid token");
            }
            Some(Report::Summary {
                count,
                total,
                since,
            }) => tracing::warn!(
                "publisher {device} refused again: {count} more attempts with an invalid token \
                 ({total} in {}{})",
                human(since),
                if known {
                    ""
                } else {
                    ", all devices without a token"
                }
            ),
            None => tracing::debug!("publisher {device} refused: invalid token"),
        }
    }

    /// The codec of `track` of `stream` as `device` announced it, if `socket` is the device's live
    /// publisher and announced `stream`.
    fn codec(&self, device: &str, socket: &Socket, stream: &str, track: &str) -> Option<Codec> {
        let mut devices = self.lock();
        let d = devices.get_mut(device)?;
        if !d.live_as(socket)?.announced.contains(stream) {
            return None;
        }
        d.streams.get(stream)?.get(track).copied()
    }

    /// Handles an `announce` of `socket`: the ids checked, the device's stream limit kept, the
    /// stream re-published as `<device>/<stream>`. `Err` names what was refused.
    fn announce(&self, device: &str, socket: &Socket, announce: Announce) -> Result<(), String> {
        if !is_valid_id(&announce.stream) {
            return Err(format!(
                "invalid stream id {}: must be {ID_RULE}",
                shown(&announce.stream)
            ));
        }
        if let Some(t) = announce.tracks.iter().find(|t| !is_valid_id(&t.track)) {
            return Err(format!(
                "invalid track id {} in stream {:?}: must be {ID_RULE}",
                shown(&t.track),
                announce.stream
            ));
        }
        let local = announce.stream.clone();
        let codecs: HashMap<String, Codec> = announce
            .tracks
            .iter()
            .map(|t| (t.track.clone(), t.codec))
            .collect();
        let mut devices = self.lock();
        let Some(d) = devices.get_mut(device) else {
            return Err("not connected".into());
        };
        if d.live_as(socket).is_none() {
            return Err("not connected".into());
        }
        let held = d.streams.len();
        if !d.streams.contains_key(&local) && held >= self.limits.streams {
            return Err(format!(
                "stream limit reached: device {device:?} has {held} streams on this relay \
                 (max_streams_per_publisher = {}); stream {local:?} refused",
                self.limits.streams
            ));
        }
        let announce = Announce {
            stream: relay_id(device, &local),
            ..announce
        };
        // Under the device lock, so a concurrent withdrawal cannot interleave.
        self.hub
            .announce_within(announce, &d.budget)
            .map_err(|e| e.to_string())?;
        if let Some(live) = d.live_as(socket) {
            live.announced.insert(local.clone());
        }
        d.streams.insert(local, codecs);
        Ok(())
    }

    /// Publishes a frame of `socket`; tells the publisher when its cache budget starts refusing
    /// keyframes (then a summary now and then, and a log line when it fits again).
    fn media(&self, device: &str, socket: &Socket, meta: MediaMeta, data: Bytes) {
        let Some(codec) = self.codec(device, socket, &meta.stream, &meta.track) else {
            tracing::debug!(
                device,
                stream = meta.stream,
                "media for an unannounced track ignored"
            );
            return;
        };
        let key = meta.key;
        // A frame read from the network is a view of the connection's read buffer, which is
        // larger; a cached one would keep the whole buffer alive (measured: ~41 KB held per cached
        // 30 KB keyframe). Video frames may be cached: give them their own allocation.
        let data = if codec.kind() == TrackKind::Video {
            Bytes::copy_from_slice(&data)
        } else {
            data
        };
        let frame = MediaFrame {
            stream: relay_id(device, &meta.stream).into(),
            track: meta.track.as_str().into(),
            codec,
            pts: meta.pts,
            duration: 0,
            key,
            t: meta.t,
            data,
        };
        if let Err(e) = self.hub.publish(frame) {
            tracing::debug!(device, error = %e, "frame not published");
            return;
        }
        if key {
            self.check_budget(device, socket, &meta.stream);
        }
    }

    /// After a keyframe of `stream`: whether the device's cache budget refused something since
    /// the last look, reported like any repeated failure.
    fn check_budget(&self, device: &str, socket: &Socket, stream: &str) {
        let mut devices = self.lock();
        let Some(d) = devices.get_mut(device) else {
            return;
        };
        let refused = d.budget.refused();
        let now = Instant::now();
        if refused == d.refused {
            if let Some(ended) = d.over_budget.recovered(now) {
                tracing::info!(
                    device,
                    "cache of the publisher's streams within max_cache_per_publisher again \
                     after {} refusals over {}",
                    ended.failures,
                    human(ended.lasted)
                );
            }
            return;
        }
        d.refused = refused;
        let limit = d.budget.limit();
        let message = match d.over_budget.failed(now) {
            Some(Report::First) => format!(
                "cache limit reached: the streams of device {device:?} may cache {limit} bytes \
                 (max_cache_per_publisher); keyframes of {stream:?} that do not fit are relayed \
                 but not cached, so late joiners wait for the next one"
            ),
            Some(Report::Summary { total, since, .. }) => format!(
                "cache limit still reached: {total} frames of device {device:?} not cached in {} \
                 (max_cache_per_publisher = {limit} bytes)",
                human(since)
            ),
            None => return,
        };
        drop(devices);
        tracing::warn!(device, "{message}");
        let _ = socket.emit("error", vec![Arg::Json(json!({ "message": message }))]);
    }

    /// `stream` of `device` changed state, if `socket` announced it.
    fn status(&self, device: &str, socket: &Socket, mut status: Status) {
        if self
            .codec(device, socket, &status.stream, &status.track)
            .is_none()
        {
            return;
        }
        status.stream = relay_id(device, &status.stream);
        if let Err(e) = self.hub.status(status) {
            tracing::debug!(device, error = %e, "status not applied");
        }
    }

    /// `socket` disconnected: if it was the device's publisher, its streams go down and are
    /// withdrawn after the grace period.
    fn disconnected(self: &Arc<Self>, device: &str, socket: &Socket) {
        let gone = {
            let mut devices = self.lock();
            let Some(d) = devices.get_mut(device) else {
                return;
            };
            if d.live_as(socket).is_none() {
                // Replaced by a newer connection, which took over.
                return;
            }
            d.live.take()
        };
        if let Some(live) = gone {
            self.leave(device, live.announced);
        }
    }

    /// The streams a connection of `device` had announced: their tracks go down now, and they are
    /// withdrawn after the grace period unless a new connection announces them again.
    fn leave(self: &Arc<Self>, device: &str, streams: HashSet<String>) {
        let tracks: Vec<(String, String)> = {
            let devices = self.lock();
            let Some(d) = devices.get(device) else {
                return;
            };
            streams
                .iter()
                .filter_map(|s| Some((s, d.streams.get(s)?)))
                .flat_map(|(s, tracks)| tracks.keys().map(|t| (s.clone(), t.clone())))
                .collect()
        };
        for (stream, track) in tracks {
            let _ = self.hub.status(Status {
                stream: relay_id(device, &stream),
                track,
                state: TrackState::Down,
                reason: "publisher disconnected".into(),
            });
        }
        let (me, device) = (self.clone(), device.to_owned());
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                tokio::time::sleep(WITHDRAW_GRACE).await;
                me.withdraw(&device, &streams);
            });
        }
    }

    /// Withdraws those of `streams` no connection of `device` announced again; forgets the
    /// device once it has nothing on the relay.
    fn withdraw(&self, device: &str, streams: &HashSet<String>) {
        let mut devices = self.lock();
        let Some(d) = devices.get_mut(device) else {
            return;
        };
        let kept: HashSet<String> = d
            .live
            .as_ref()
            .map(|l| l.announced.clone())
            .unwrap_or_default();
        for stream in streams.difference(&kept) {
            if d.streams.remove(stream).is_some() {
                let _ = self.hub.withdraw(&relay_id(device, stream));
            }
        }
        if d.live.is_none() && d.streams.is_empty() {
            devices.remove(device);
        }
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

/// Serves the publisher contract on `ns`.
pub(super) fn serve(ns: &Namespace, publishers: Arc<Publishers>) {
    ns.on_connect(move |socket, auth| {
        let device = publishers.admit(socket, auth)?;
        tracing::info!(device, sid = socket.id(), "publisher connected");
        let (p, d) = (publishers.clone(), device.clone());
        socket.on("announce", move |socket, args, ack| {
            let result = match first_json(&args).map(Announce::deserialize) {
                Some(Ok(announce)) => p.announce(&d, socket, announce),
                _ => Err("announce must be {stream, tracks}".into()),
            };
            let reply = match result {
                Ok(()) => json!({"ok": true}),
                Err(e) => {
                    tracing::debug!(device = d, "announce refused: {e}");
                    json!({"error": e})
                }
            };
            let _ = match ack {
                Some(ack) => ack.send(vec![Arg::Json(reply)]),
                None if reply["error"].is_string() => {
                    let message = json!({"message": reply["error"]});
                    socket.emit("error", vec![Arg::Json(message)])
                }
                None => Ok(()),
            };
        });
        let (p, d) = (publishers.clone(), device.clone());
        socket.on("media", move |socket, args, _| {
            let (Some(Ok(meta)), Some(Arg::Binary(data))) =
                (first_json(&args).map(MediaMeta::deserialize), args.get(1))
            else {
                tracing::debug!(device = d, "malformed media event ignored");
                return;
            };
            p.media(&d, socket, meta, data.clone());
        });
        let (p, d) = (publishers.clone(), device.clone());
        socket.on("status", move |socket, args, _| {
            if let Some(Ok(status)) = first_json(&args).map(Status::deserialize) {
                p.status(&d, socket, status);
            }
        });
        let (p, d) = (publishers.clone(), device);
        socket.on_disconnect(move |socket, reason| {
            tracing::info!(
                device = d,
                reason = reason.as_str(),
                "publisher disconnected"
            );
            p.disconnected(&d, socket);
        });
        Ok(())
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relay_ids_are_namespaced_by_device() {
        assert_eq!(relay_id("garage-pi", "cam0"), "garage-pi/cam0");
    }

    #[test]
    fn ids_in_messages_are_escaped_and_cut() {
        assert_eq!(shown("cam0"), "\"cam0\"");
        assert_eq!(shown("a\nb\u{1b}[31m"), "\"a\\nb\\u{1b}[31m\"");
        let long = "x".repeat(10_000);
        assert_eq!(
            shown(&long),
            format!("\"{}\"… (10000 bytes)", "x".repeat(64))
        );
    }
}
