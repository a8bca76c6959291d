//! `[[relay]]`: where the gateway publishes its streams, and how its client behaves towards it.
//! The one schema of these settings: the publisher client takes the same [`Transport`],
//! [`TlsOptions`], [`Reconnection`] and [`QueueLimits`] values.

use super::duration::HumanDuration;
use super::server::DEFAULT_SOCKETIO_PATH;
use super::size::ByteSize;
use crate::files;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

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
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: HumanDuration,
    /// Extra CA file, or no verification at all (test relays only).
    #[serde(default)]
    pub tls: TlsOptions,
    /// Reconnection with backoff.
    #[serde(default)]
    pub reconnection: Reconnection,
    /// Bounds of the outgoing queue.
    #[serde(default)]
    pub queue: QueueLimits,
}

fn default_namespace() -> String {
    "/publish".into()
}

fn default_path() -> String {
    DEFAULT_SOCKETIO_PATH.into()
}

/// `["websocket"]`.
pub fn default_transports() -> Vec<Transport> {
    vec![Transport::Websocket]
}

fn default_connect_timeout() -> HumanDuration {
    DEFAULT_CONNECT_TIMEOUT
}

/// How long a connection attempt may take unless configured otherwise.
pub const DEFAULT_CONNECT_TIMEOUT: HumanDuration = HumanDuration::from_secs(5);

impl RelayConfig {
    /// The token to present: `token`, or the trimmed content of `token_file` (a regular file of
    /// at most 1 MiB, in UTF-8) read now, so a rotated token is picked up at the next reconnection.
    pub fn read_token(&self) -> std::io::Result<Option<String>> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(Some(t.clone())),
            (None, Some(file)) => {
                let bytes = files::read(file).map_err(|e| std::io::Error::from(e.problem))?;
                let text = String::from_utf8(bytes)
                    .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))?;
                Ok(Some(text.trim().to_owned()))
            }
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
}

/// An Engine.IO transport.
#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// HTTP long-polling.
    Polling,
    /// WebSocket.
    Websocket,
}

/// TLS settings for `https://` and `wss://` relays.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct TlsOptions {
    /// A PEM file of CA certificates trusted in addition to the system's (e.g. a private CA).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate. Only for self-signed test relays: anyone on the path can then read
    /// and change the stream. Logged as a warning on every connect.
    #[serde(default)]
    pub insecure_skip_verify: bool,
}

/// Reconnection with exponential backoff and jitter, like python-socketio's client.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Reconnection {
    /// Reconnect at all after a lost or failed connection.
    pub enabled: bool,
    /// First delay; doubles on each failed attempt.
    pub delay: HumanDuration,
    /// Upper bound of the doubling delay, jitter included.
    pub max_delay: HumanDuration,
    /// Jitter factor in 0..=1: each delay is multiplied by a random factor in 1 ± randomization.
    pub randomization: f64,
    /// Give up after this many failed attempts in a row; 0 = never give up.
    pub attempts: u32,
}

impl Default for Reconnection {
    fn default() -> Self {
        Reconnection {
            enabled: true,
            delay: HumanDuration::from_secs(1),
            max_delay: HumanDuration::from_secs(5),
            randomization: 0.5,
            attempts: 0,
        }
    }
}

/// Bounds of the media-aware outgoing queue towards one relay (sizes may be written "8MiB").
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct QueueLimits {
    /// Most queued packets.
    pub max_frames: usize,
    /// Most queued bytes.
    pub max_bytes: ByteSize,
}

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_frames: 256,
            max_bytes: ByteSize::new(8 * 1024 * 1024),
        }
    }
}
