//! `[[relay]]`: where the gateway publishes its streams, and how the client behaves towards it.

use super::units;
use crate::client::{ClientOptions, QueueOptions, ReconnectOptions, TlsOptions, Transport};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// One relay the gateway publishes every stream to.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// `http://`, `https://`, `ws://` or `wss://` host and optional port, with optional query
    /// parameters; no path (that is `socketio_path`).
    pub url: String,
    /// Socket.IO namespace to publish on.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// Socket.IO endpoint path on the relay (python-socketio's `socketio_path`).
    #[serde(default = "default_path")]
    pub socketio_path: String,
    /// Extra query parameters on every Engine.IO request.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Token sent in the CONNECT auth payload `{token, device}`.
    pub token: Option<String>,
    /// File holding the token (re-read at every connection attempt); exclusive with `token`.
    pub token_file: Option<PathBuf>,
    /// `["websocket"]`, `["polling", "websocket"]` (upgrade) or `["polling"]`.
    #[serde(default = "default_transports")]
    pub transports: Vec<Transport>,
    /// Extra HTTP headers on every request (handshake and polling).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Give up on a connection attempt (TCP + TLS + handshake + CONNECT) after this long.
    #[serde(
        default = "default_connect_timeout",
        deserialize_with = "units::duration"
    )]
    pub connect_timeout: Duration,
    /// Extra CA file, or no verification at all (test relays only).
    #[serde(default)]
    pub tls: TlsOptions,
    #[serde(default)]
    pub reconnection: Reconnection,
    #[serde(default)]
    pub queue: QueueLimits,
}

fn default_namespace() -> String {
    "/publish".into()
}

fn default_path() -> String {
    "/socket.io/".into()
}

fn default_transports() -> Vec<Transport> {
    vec![Transport::Websocket]
}

fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}

impl RelayConfig {
    /// The token to present: `token`, or the trimmed content of `token_file` read now (so a
    /// rotated token is picked up at the next reconnection).
    pub fn read_token(&self) -> std::io::Result<Option<String>> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(Some(t.clone())),
            (None, Some(file)) => Ok(Some(std::fs::read_to_string(file)?.trim().to_owned())),
            (None, None) => Ok(None),
        }
    }

    /// The CONNECT auth `{token, device}`, with the token read now (see
    /// [`RelayConfig::read_token`]).
    pub fn auth(&self, device: &str) -> std::io::Result<serde_json::Value> {
        let mut auth = serde_json::json!({ "device": device });
        if let Some(token) = self.read_token()? {
            auth["token"] = token.into();
        }
        Ok(auth)
    }

    /// The publisher client's options for this relay, with the CONNECT auth of
    /// [`RelayConfig::auth`].
    pub fn client_options(&self, device: &str) -> std::io::Result<ClientOptions> {
        let auth = self.auth(device)?;
        let rc = &self.reconnection;
        Ok(ClientOptions {
            socketio_path: self.socketio_path.clone(),
            query: self.query.clone(),
            headers: self.headers.clone(),
            namespace: self.namespace.clone(),
            auth: Some(auth),
            transports: self.transports.clone(),
            connect_timeout: self.connect_timeout.as_secs_f64(),
            tls: self.tls.clone(),
            reconnection: ReconnectOptions {
                enabled: rc.enabled,
                delay: rc.delay.as_secs_f64(),
                max_delay: rc.max_delay.as_secs_f64(),
                randomization: rc.randomization,
                attempts: rc.attempts,
            },
            queue: QueueOptions {
                max_frames: self.queue.max_frames,
                max_bytes: usize::try_from(self.queue.max_bytes).unwrap_or(usize::MAX),
            },
            ..ClientOptions::new(self.url.clone())
        })
    }
}

/// Reconnection with exponential backoff and jitter, like python-socketio's client (the file's
/// humane durations; converted to the client's [`ReconnectOptions`]).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reconnection {
    /// Reconnect at all after a lost or failed connection.
    pub enabled: bool,
    /// First delay.
    #[serde(deserialize_with = "units::duration")]
    pub delay: Duration,
    /// Upper bound of the doubling delay.
    #[serde(deserialize_with = "units::duration")]
    pub max_delay: Duration,
    /// Jitter factor in 0..=1: each delay is multiplied by a random factor in 1 ± randomization.
    pub randomization: f64,
    /// Give up after this many failed attempts in a row; 0 = never give up.
    pub attempts: u32,
}

impl Default for Reconnection {
    fn default() -> Self {
        Reconnection {
            enabled: true,
            delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(5),
            randomization: 0.5,
            attempts: 0,
        }
    }
}

/// Bounds of the media-aware outgoing queue towards one relay (sizes may be written "8MiB").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueLimits {
    pub max_frames: usize,
    #[serde(deserialize_with = "units::bytes")]
    pub max_bytes: u64,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_frames: 256,
            max_bytes: 8 * 1024 * 1024,
        }
    }
}
