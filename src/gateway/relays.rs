//! Publishing to relays: every stream to every `[[relay]]`, through our client, with the contract
//! (CONNECT auth `{token, device}`, `announce` on connect and on change, `media`, `status`).
//!
//! Each relay is a hub receiver that follows every stream; its queue is the client's media-aware
//! queue. After every (re)connection the hub re-sends the relay announce, status and the cached GOP,
//! so the relay starts at a keyframe without waiting for the next one.

use super::error::GatewayError;
use crate::client::{AuthProvider, Client, ClientEvent, ClientHandle, ClientOptions, MediaPush};
use crate::config::{Config, RelayConfig};
use crate::hub::{ReceiverId, SharedEvent, Sink};
use crate::queue::{Class, Push};
use crate::service::status::LinkReport;
use crate::service::viewers::{ViewerHub, Wire};
use crate::socketio::Arg;
use crate::sync::lock;
use serde_json::Value;
use std::sync::Arc;
use std::time::Duration;

/// A relay connection as a hub receiver.
struct RelaySink {
    client: ClientHandle,
    namespace: String,
}

impl Sink<Wire> for RelaySink {
    fn offer(&self, packet: &SharedEvent<Wire>, class: Class, _bytes: usize) -> Push {
        let event = &packet.event;
        let first = serde_json::from_str(&event.json).unwrap_or(Value::Null);
        match &event.binary {
            Some(frame) => {
                match self
                    .client
                    .send_media(&self.namespace, first, frame.clone(), class)
                {
                    MediaPush::Queued => Push::Queued,
                    MediaPush::Dropped | MediaPush::NotConnected | MediaPush::TooLarge => {
                        Push::Dropped
                    }
                }
            }
            // Announce and status while disconnected are lost on purpose: the hub re-sends them
            // on the next connect.
            None => match self
                .client
                .emit(&self.namespace, event.name, vec![Arg::Json(first)])
            {
                Ok(()) => Push::Queued,
                Err(_) => Push::Dropped,
            },
        }
    }
}

/// One relay link.
struct Link {
    name: String,
    client: ClientHandle,
    receiver: ReceiverId,
}

/// The relay links of a running gateway.
pub(super) struct Relays {
    links: std::sync::Mutex<Vec<Link>>,
    hub: Arc<ViewerHub>,
}

/// How a `[[relay]]` is named in logs and the status (and found again on reload).
fn link_name(r: &RelayConfig) -> String {
    format!("{}{}", r.url, r.namespace)
}

/// The publisher client's options for a `[[relay]]`: its settings as they are, and the CONNECT
/// auth `{token, device}` with the token read now (see [`RelayConfig::auth`]).
fn client_options(r: &RelayConfig, device: &str) -> std::io::Result<ClientOptions> {
    Ok(ClientOptions {
        socketio_path: r.socketio_path.clone(),
        query: r.query.clone(),
        headers: r.headers.clone(),
        namespace: r.namespace.clone(),
        auth: Some(r.auth(device)?),
        transports: r.transports.clone(),
        connect_timeout: r.connect_timeout.get(),
        tls: r.tls.clone(),
        reconnection: r.reconnection.clone(),
        queue: r.queue.clone(),
        ..ClientOptions::new(r.url.clone())
    })
}

/// Connects to one `[[relay]]`. With `token_file`, the CONNECT auth is built again at every
/// attempt from the file as it is then, so a rotated token is used at the next reconnection
/// (an unreadable file keeps the last token that could be read).
fn connect(
    r: &RelayConfig,
    device: &str,
) -> Result<(ClientHandle, tokio::sync::mpsc::Receiver<ClientEvent>), GatewayError> {
    let error = |problem: String| GatewayError::Relay {
        relay: r.url.clone(),
        problem,
    };
    let options =
        client_options(r, device).map_err(|e| error(format!("cannot read token_file: {e}")))?;
    let auth = r.token_file.as_ref().map(|_| {
        let relay = r.clone();
        let device = device.to_owned();
        let last = std::sync::Mutex::new(options.auth.clone());
        let provider: AuthProvider = Arc::new(move |_namespace: &str| {
            let mut last = lock(&last);
            match relay.auth(&device) {
                Ok(fresh) => *last = Some(fresh),
                Err(e) => tracing::warn!(
                    relay = %relay.url,
                    "cannot re-read token_file, presenting the last token read: {e}"
                ),
            }
            last.clone()
        });
        provider
    });
    Client::connect_with_auth(options, auth).map_err(|e| error(e.to_string()))
}

impl Relays {
    /// Connects to every configured relay (in the background; failures are retried and shown in
    /// the status, never fatal) and attaches each to the hub.
    pub(super) fn start(cfg: &Config, hub: &Arc<ViewerHub>) -> Result<Relays, GatewayError> {
        let relays = Relays {
            links: std::sync::Mutex::new(Vec::new()),
            hub: hub.clone(),
        };
        for r in &cfg.relays {
            relays.add(r, &cfg.device)?;
        }
        Ok(relays)
    }

    /// The links, even if a panic poisoned the lock (the list itself stays consistent).
    fn links(&self) -> std::sync::MutexGuard<'_, Vec<Link>> {
        lock(&self.links)
    }

    /// Connects to one more relay (a `[[relay]]` added on reload, or at start).
    pub(super) fn add(&self, r: &RelayConfig, device: &str) -> Result<(), GatewayError> {
        let name = link_name(r);
        let (client, events) = connect(r, device)?;
        let sink = RelaySink {
            client: client.clone(),
            namespace: r.namespace.clone(),
        };
        let receiver = self.hub.add_receiver(Arc::new(sink), true);
        tokio::spawn(follow(name.clone(), events, self.hub.clone(), receiver));
        self.links().push(Link {
            name,
            client,
            receiver,
        });
        Ok(())
    }

    /// Disconnects from one relay (a `[[relay]]` removed on reload), at most `budget`.
    pub(super) async fn remove(&self, r: &RelayConfig, budget: Duration) {
        let name = link_name(r);
        let gone: Vec<Link> = {
            let mut links = self.links();
            let (gone, keep) = std::mem::take(&mut *links)
                .into_iter()
                .partition(|l| l.name == name);
            *links = keep;
            gone
        };
        self.close_links(gone, budget).await;
    }

    /// State of each link for `/api/status` and `/metrics`.
    pub(super) fn reports(&self) -> Vec<LinkReport> {
        self.links()
            .iter()
            .map(|l| {
                let s = l.client.stats();
                LinkReport {
                    name: l.name.clone(),
                    state: serde_json::to_value(s.state)
                        .ok()
                        .and_then(|v| v.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                    last_error: s.last_error,
                    last_error_at: s.last_error_at,
                    sent: s.sent,
                    dropped: s.dropped,
                    reconnects: s.reconnects,
                    attempts: s.failed_attempts,
                }
            })
            .collect()
    }

    /// Disconnects from every relay (each gets DISCONNECT), at most `budget`.
    pub(super) async fn close(&self, budget: Duration) {
        let all = std::mem::take(&mut *self.links());
        self.close_links(all, budget).await;
    }

    async fn close_links(&self, links: Vec<Link>, budget: Duration) {
        for l in &links {
            self.hub.remove_receiver(l.receiver);
        }
        let closing = futures_util::future::join_all(links.iter().map(|l| l.client.close()));
        if tokio::time::timeout(budget, closing).await.is_err() {
            tracing::warn!("relays did not close in time");
        }
    }
}

/// Re-sends everything after each connect, and logs what the relay says (`error` events: e.g. a
/// limit it enforces). The client logs the link's own life (connected, lost, refused, closed):
/// one line per event, repeated failures summarised.
async fn follow(
    name: String,
    mut events: tokio::sync::mpsc::Receiver<ClientEvent>,
    hub: Arc<ViewerHub>,
    receiver: ReceiverId,
) {
    while let Some(event) = events.recv().await {
        match event {
            ClientEvent::Connected { .. } => {
                if hub.resync(receiver).is_err() {
                    return;
                }
            }
            ClientEvent::Event {
                name: event, args, ..
            } if event == "error" => {
                let message = match args.first() {
                    Some(Arg::Json(Value::Object(o))) => o.get("message").cloned(),
                    Some(Arg::Json(v)) => Some(v.clone()),
                    _ => None,
                };
                let message = message.unwrap_or(Value::Null);
                let text = message.as_str().map_or(message.to_string(), str::to_owned);
                tracing::warn!(relay = %name, "the relay says: {}", text.escape_debug());
            }
            ClientEvent::Event { name: event, .. } => {
                tracing::debug!(relay = %name, "ignoring event {event:?} from the relay");
            }
            ClientEvent::Disconnected { .. } | ClientEvent::ConnectError { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Transport;

    #[test]
    fn client_options_are_the_relay_settings_with_the_auth_read_now() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("relay.token"), "tok-123\n").expect("write token");
        let text = r#"
[[relay]]
url = "wss://relay.example.com?x=1"
token_file = "relay.token"
transports = ["polling", "websocket"]
connect_timeout = "2s"
reconnection = { delay = "250ms", max_delay = "30s" }
queue = { max_frames = 30, max_bytes = "1MB" }
[[stream]]
id = "cam0"
[stream.audio]
"#;
        let cfg = Config::parse(text, "t.toml", dir.path()).unwrap_or_else(|e| panic!("{e}"));
        let opts = client_options(&cfg.relays[0], "pi").expect("token file readable");
        assert_eq!(
            opts.auth,
            Some(serde_json::json!({ "token": "tok-123", "device": "pi" }))
        );
        assert_eq!(opts.namespace, "/publish");
        assert_eq!(opts.transports, [Transport::Polling, Transport::Websocket]);
        assert_eq!(opts.connect_timeout, Duration::from_secs(2));
        assert_eq!(opts.reconnection, cfg.relays[0].reconnection);
        assert_eq!(
            (opts.queue.max_frames, opts.queue.max_bytes.get()),
            (30, 1_000_000)
        );
        let endpoint = opts.validate().expect("valid client options");
        assert_eq!((endpoint.tls, endpoint.port), (true, 443));
        assert_eq!(endpoint.query, ["x=1"]);
        std::fs::write(dir.path().join("relay.token"), "rotated").expect("rewrite token");
        let opts = client_options(&cfg.relays[0], "pi").expect("token file readable");
        assert_eq!(opts.auth.expect("auth")["token"], "rotated");
    }
}
