//! `[server]` (the gateway's LAN server), `[relay_server]` (`sioedge relay`: the same server
//! settings plus the relay's own) and `[log]`.

use super::duration::HumanDuration;
use super::listen::ListenAddr;
use super::size::ByteSize;
use serde::de::{MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The Socket.IO endpoint path of servers and relays unless configured otherwise.
pub const DEFAULT_SOCKETIO_PATH: &str = "/socket.io/";

/// The HTTP + Socket.IO server settings: `[server]`, and the same keys in `[relay_server]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    /// `IP:port` to listen on; port 0 picks a free port (tests).
    #[serde(deserialize_with = "super::listen::deserialize")]
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
    pub ping_interval: HumanDuration,
    /// Engine.IO ping timeout.
    pub ping_timeout: HumanDuration,
    /// Largest accepted incoming message (Engine.IO `maxPayload`); on the relay, a publisher's
    /// biggest frame must fit.
    pub max_payload: ByteSize,
    /// Serve HTTPS (and WSS) directly with rustls.
    pub tls: Option<ServerTls>,
    /// Most connections open at once (HTTP and WebSocket; also bounds the Engine.IO sessions).
    /// When reached, the connection idle for the longest is closed to make room, else a
    /// newcomer gets 503. Lowered at start to what the file descriptor limit allows.
    pub max_connections: usize,
    /// Most connections open at once from one address (an IPv6 /64 counts as one); 0: no
    /// limit (e.g. behind a reverse proxy, where every client has the proxy's address).
    pub max_connections_per_address: usize,
    /// How long a connection may stay open with no request in progress (before its first
    /// request, between keep-alive requests); WebSockets are kept alive by pings instead.
    pub idle_timeout: HumanDuration,
    /// How long a request's headers may take from their first byte (then 408 and close).
    pub header_timeout: HumanDuration,
    /// How long a request body (a long-polling POST) may take (then 408 and close).
    pub body_timeout: HumanDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            path: DEFAULT_SOCKETIO_PATH.into(),
            cors_origins: Vec::new(),
            viewer_token: None,
            viewer_password: None,
            ping_interval: HumanDuration::from_secs(25),
            ping_timeout: HumanDuration::from_secs(20),
            max_payload: ByteSize::new(1_000_000),
            tls: None,
            // A Pi with 512 MB: far more viewers than its uplink can feed, far fewer sockets than
            // the descriptors it has; one LAN host gets a dozen browser tabs' worth.
            max_connections: 512,
            max_connections_per_address: 64,
            idle_timeout: HumanDuration::from_secs(30),
            header_timeout: HumanDuration::from_secs(10),
            body_timeout: HumanDuration::from_secs(20),
        }
    }
}

/// Optional viewer authentication, as the server should enforce it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ViewerAuth<'a> {
    /// CONNECT auth must carry `{token}` equal to this.
    Token(&'a str),
    /// CONNECT auth must carry `{password}` equal to this.
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

/// `[relay_server]`: settings of `sioedge relay`: the [`ServerConfig`] keys (listen, path, CORS,
/// viewer auth, ping, `max_payload`, TLS, connection limits and timeouts) with the relay's
/// defaults, plus the relay's own.
#[derive(Debug, Clone, PartialEq)]
pub struct RelayServerConfig {
    /// The HTTP + Socket.IO server, written at the top level of `[relay_server]`.
    pub server: ServerConfig,
    /// Namespace publishers (gateways) connect to.
    pub publisher_namespace: String,
    /// Namespace viewers connect to.
    pub viewer_namespace: String,
    /// Publisher tokens, device id → token.
    pub tokens: BTreeMap<String, String>,
    /// A TOML file of `device = "token"` lines (re-read on reload); exclusive with `tokens`.
    pub tokens_file: Option<PathBuf>,
    /// What happens when a device connects twice.
    pub duplicate_publisher: DuplicatePublisher,
    /// `redis://host:port/db`: share streams and the late-joiner cache across nodes.
    pub adapter: Option<String>,
    /// Prefix of every Redis key and channel, so several deployments can share one Redis.
    pub adapter_prefix: String,
    /// How long the late-joiner cache lives in Redis without refresh.
    pub cache_ttl: HumanDuration,
    /// Streams one publisher (device) may have on the relay at once; an `announce` past it is
    /// refused with an error naming this key.
    pub max_streams_per_publisher: usize,
    /// Late-joiner cache one publisher's streams may hold together; past it, a keyframe that does
    /// not fit is relayed live but not cached (late joiners wait for the next one that fits).
    pub max_cache_per_publisher: ByteSize,
}

impl Default for RelayServerConfig {
    fn default() -> Self {
        RelayServerConfig {
            server: ServerConfig {
                listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
                max_payload: ByteSize::new(4 * 1024 * 1024),
                // An internet-facing server: many viewers, some behind one NAT address.
                max_connections: 8192,
                max_connections_per_address: 256,
                ..ServerConfig::default()
            },
            publisher_namespace: "/publish".into(),
            viewer_namespace: "/".into(),
            tokens: BTreeMap::new(),
            tokens_file: None,
            duplicate_publisher: DuplicatePublisher::default(),
            adapter: None,
            adapter_prefix: "sioedge".into(),
            cache_ttl: HumanDuration::from_secs(60),
            max_streams_per_publisher: 32,
            max_cache_per_publisher: ByteSize::new(32 << 20),
        }
    }
}

/// The keys of `[relay_server]`: the server's, then the relay's. Deserialized while the key is
/// read, so an unknown key is reported at its own position, like every derived table.
#[derive(Deserialize)]
#[serde(field_identifier, rename_all = "snake_case")]
enum RelayServerKey {
    Listen,
    Path,
    CorsOrigins,
    ViewerToken,
    ViewerPassword,
    PingInterval,
    PingTimeout,
    MaxPayload,
    Tls,
    MaxConnections,
    MaxConnectionsPerAddress,
    IdleTimeout,
    HeaderTimeout,
    BodyTimeout,
    PublisherNamespace,
    ViewerNamespace,
    Tokens,
    TokensFile,
    DuplicatePublisher,
    Adapter,
    AdapterPrefix,
    CacheTtl,
    MaxStreamsPerPublisher,
    MaxCachePerPublisher,
}

/// Reads `[relay_server]` key by key into [`RelayServerConfig::default`], so the server keys land
/// in the one [`ServerConfig`] and every value error keeps its own position (serde's `flatten`
/// would lose both the positions and `deny_unknown_fields`).
impl<'de> Deserialize<'de> for RelayServerConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Table;
        impl<'de> Visitor<'de> for Table {
            type Value = RelayServerConfig;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("the [relay_server] table")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                use RelayServerKey as K;
                let mut rs = RelayServerConfig::default();
                let s = &mut rs.server;
                // TOML itself refuses a key given twice.
                while let Some(key) = map.next_key::<RelayServerKey>()? {
                    match key {
                        K::Listen => s.listen = map.next_value::<ListenAddr>()?.0,
                        K::Path => s.path = map.next_value()?,
                        K::CorsOrigins => s.cors_origins = map.next_value()?,
                        K::ViewerToken => s.viewer_token = map.next_value()?,
                        K::ViewerPassword => s.viewer_password = map.next_value()?,
                        K::PingInterval => s.ping_interval = map.next_value()?,
                        K::PingTimeout => s.ping_timeout = map.next_value()?,
                        K::MaxPayload => s.max_payload = map.next_value()?,
                        K::Tls => s.tls = map.next_value()?,
                        K::MaxConnections => s.max_connections = map.next_value()?,
                        K::MaxConnectionsPerAddress => {
                            s.max_connections_per_address = map.next_value()?
                        }
                        K::IdleTimeout => s.idle_timeout = map.next_value()?,
                        K::HeaderTimeout => s.header_timeout = map.next_value()?,
                        K::BodyTimeout => s.body_timeout = map.next_value()?,
                        K::PublisherNamespace => rs.publisher_namespace = map.next_value()?,
                        K::ViewerNamespace => rs.viewer_namespace = map.next_value()?,
                        K::Tokens => rs.tokens = map.next_value()?,
                        K::TokensFile => rs.tokens_file = map.next_value()?,
                        K::DuplicatePublisher => rs.duplicate_publisher = map.next_value()?,
                        K::Adapter => rs.adapter = map.next_value()?,
                        K::AdapterPrefix => rs.adapter_prefix = map.next_value()?,
                        K::CacheTtl => rs.cache_ttl = map.next_value()?,
                        K::MaxStreamsPerPublisher => {
                            rs.max_streams_per_publisher = map.next_value()?
                        }
                        K::MaxCachePerPublisher => rs.max_cache_per_publisher = map.next_value()?,
                    }
                }
                Ok(rs)
            }
        }
        d.deserialize_map(Table)
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
