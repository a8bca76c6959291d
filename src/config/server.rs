//! `[server]` (the gateway's LAN server), `[relay_server]` (`sioedge relay`) and `[log]`.

use super::units;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The HTTP + Socket.IO server settings shared by the gateway's LAN server and the relay.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `IP:port` to listen on; port 0 picks a free port (tests).
    pub listen: SocketAddr,
    /// Socket.IO endpoint path, e.g. `/socket.io/`.
    pub path: String,
    /// Origins allowed cross-origin (`"*"` or `scheme://host[:port]`); empty = same origin only.
    pub cors_origins: Vec<String>,
    /// Viewers must present this token in the CONNECT auth payload (`{token}`).
    pub viewer_token: Option<String>,
    /// Viewers must present this password (`{password}`); exclusive with `viewer_token`.
    pub viewer_password: Option<String>,
    /// Engine.IO ping interval.
    #[serde(deserialize_with = "units::duration")]
    pub ping_interval: Duration,
    /// Engine.IO ping timeout.
    #[serde(deserialize_with = "units::duration")]
    pub ping_timeout: Duration,
    /// Largest accepted incoming message (Engine.IO `maxPayload`), in bytes.
    #[serde(deserialize_with = "units::bytes")]
    pub max_payload: u64,
    /// Serve HTTPS (and WSS) directly with rustls.
    pub tls: Option<ServerTls>,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            path: "/socket.io/".into(),
            cors_origins: Vec::new(),
            viewer_token: None,
            viewer_password: None,
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            tls: None,
        }
    }
}

/// Optional viewer authentication, as the server should enforce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerAuth<'a> {
    Token(&'a str),
    Password(&'a str),
}

impl ServerConfig {
    /// The viewer authentication configured, if any (validation guarantees at most one).
    pub fn viewer_auth(&self) -> Option<ViewerAuth<'_>> {
        match (&self.viewer_token, &self.viewer_password) {
            (Some(t), _) => Some(ViewerAuth::Token(t)),
            (None, Some(p)) => Some(ViewerAuth::Password(p)),
            (None, None) => None,
        }
    }
}

/// TLS for a server: certificate and key files, or a self-signed certificate made at start.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    /// PEM certificate chain. With `self_signed`, where the generated certificate is kept
    /// (default `<state dir>/tls/cert.pem`, see [`state_dir`]).
    pub cert: Option<PathBuf>,
    /// PEM private key. With `self_signed`, where the generated key is kept
    /// (default `<state dir>/tls/key.pem`).
    pub key: Option<PathBuf>,
    /// Generate a self-signed certificate when `cert`/`key` do not exist yet.
    #[serde(default)]
    pub self_signed: bool,
}

impl ServerTls {
    /// The certificate and key files: as configured, else where a self-signed pair is kept,
    /// `<state dir>/tls/{cert,key}.pem` (`tls/` relative to the config file's directory on a
    /// machine with no state directory at all).
    pub fn files(&self) -> (PathBuf, PathBuf) {
        let dir = state_dir().unwrap_or_default().join("tls");
        (
            self.cert.clone().unwrap_or_else(|| dir.join("cert.pem")),
            self.key.clone().unwrap_or_else(|| dir.join("key.pem")),
        )
    }

    /// With `self_signed` and neither file named: names the default ones, so validation and
    /// `check-config` see where they will be.
    pub(super) fn default_paths(&mut self) {
        if self.self_signed && self.cert.is_none() && self.key.is_none() {
            let (cert, key) = self.files();
            (self.cert, self.key) = (Some(cert), Some(key));
        }
    }
}

/// sioedge's state directory (kept across restarts and upgrades): systemd's `StateDirectory=`
/// (`$STATE_DIRECTORY`, `/var/lib/sioedge` in the packaged unit), `/var/lib/sioedge` for root (so
/// `sudo sioedge check-config` looks where the service keeps its files), else
/// `$XDG_STATE_HOME/sioedge` or `~/.local/state/sioedge`.
pub fn state_dir() -> Option<PathBuf> {
    let env = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(dirs) = env("STATE_DIRECTORY") {
        // Colon-separated when the unit lists several; ours is the first.
        return std::env::split_paths(&dirs).next();
    }
    if nix::unistd::geteuid().is_root() {
        return Some(PathBuf::from("/var/lib/sioedge"));
    }
    env("XDG_STATE_HOME")
        .map(PathBuf::from)
        .or_else(|| env("HOME").map(|h| Path::new(&h).join(".local/state")))
        .map(|d| d.join("sioedge"))
}

/// What the relay does when a second publisher announces a stream id that is already live.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePublisher {
    /// Disconnect the first publisher; the newcomer takes over.
    #[default]
    Replace,
    /// Keep the first publisher; the newcomer gets a CONNECT_ERROR.
    Refuse,
}

/// `[relay_server]`: settings of `sioedge relay`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RelayServerConfig {
    /// `IP:port` to listen on.
    pub listen: SocketAddr,
    /// Socket.IO endpoint path.
    pub path: String,
    /// Namespace publishers (gateways) connect to.
    pub publisher_namespace: String,
    /// Namespace viewers connect to.
    pub viewer_namespace: String,
    /// Publisher tokens, device id → token.
    pub tokens: BTreeMap<String, String>,
    /// A TOML file of `device = "token"` lines (re-read on reload); exclusive with `tokens`.
    pub tokens_file: Option<PathBuf>,
    pub duplicate_publisher: DuplicatePublisher,
    pub cors_origins: Vec<String>,
    pub viewer_token: Option<String>,
    pub viewer_password: Option<String>,
    #[serde(deserialize_with = "units::duration")]
    pub ping_interval: Duration,
    #[serde(deserialize_with = "units::duration")]
    pub ping_timeout: Duration,
    /// Largest accepted incoming message in bytes (a publisher's biggest frame must fit).
    #[serde(deserialize_with = "units::bytes")]
    pub max_payload: u64,
    pub tls: Option<ServerTls>,
    /// `redis://host:port/db`: share streams and the late-joiner cache across nodes.
    pub adapter: Option<String>,
    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    pub adapter_prefix: String,
    /// How long the late-joiner cache lives in Redis without refresh.
    #[serde(deserialize_with = "units::duration")]
    pub cache_ttl: Duration,
}

impl Default for RelayServerConfig {
    fn default() -> Self {
        let http = ServerConfig::default();
        RelayServerConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            path: http.path,
            publisher_namespace: "/publish".into(),
            viewer_namespace: "/".into(),
            tokens: BTreeMap::new(),
            tokens_file: None,
            duplicate_publisher: DuplicatePublisher::default(),
            cors_origins: http.cors_origins,
            viewer_token: None,
            viewer_password: None,
            ping_interval: http.ping_interval,
            ping_timeout: http.ping_timeout,
            max_payload: 4 * 1024 * 1024,
            tls: None,
            adapter: None,
            adapter_prefix: "sioedge".into(),
            cache_ttl: Duration::from_secs(60),
        }
    }
}

impl RelayServerConfig {
    /// The HTTP/Socket.IO part of the relay's settings, in the form the server module takes.
    pub fn http(&self) -> ServerConfig {
        ServerConfig {
            listen: self.listen,
            path: self.path.clone(),
            cors_origins: self.cors_origins.clone(),
            viewer_token: self.viewer_token.clone(),
            viewer_password: self.viewer_password.clone(),
            ping_interval: self.ping_interval,
            ping_timeout: self.ping_timeout,
            max_payload: self.max_payload,
            tls: self.tls.clone(),
        }
    }
}

/// `[log]`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `error`, `warn`, `info`, `debug`, `trace`, or `tracing` directives (`info,sioedge=debug`).
    /// `RUST_LOG` overrides it.
    pub level: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
        }
    }
}
