//! Client settings (embedded in the config file's `[[relay]]` tables) and the URLs built from them.

use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// How to reach one relay. Every field but `url` has a default; unknown keys are errors.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ClientOptions {
    /// The relay: `http://`, `https://`, `ws://` or `wss://` host and optional port, with optional
    /// query parameters (`?key=value`). Any path must be given as `socketio_path` instead.
    pub url: String,
    /// The server's Socket.IO endpoint path (python-socketio's `socketio_path`), `/socket.io/` by default.
    #[serde(default = "default_path")]
    pub socketio_path: String,
    /// Extra query parameters sent on every Engine.IO request.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    /// Extra HTTP headers sent on every request (e.g. `Authorization` for a proxy).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// The namespace to join, `/` by default.
    #[serde(default = "default_namespace")]
    pub namespace: String,
    /// The CONNECT payload (auth) for `namespace`, any JSON/TOML value, e.g. `{ token = "…" }`.
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
    /// More namespaces to join on the same connection, each with its own auth.
    #[serde(default)]
    pub extra_namespaces: Vec<NamespaceOptions>,
    /// `["websocket"]` (default), `["polling", "websocket"]` (start with long-polling, upgrade
    /// to WebSocket) or `["polling"]` (for proxies that block WebSocket).
    #[serde(default = "default_transports")]
    pub transports: Vec<Transport>,
    /// Seconds allowed for TCP + TLS + the Engine.IO handshake + the namespace CONNECTs.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout: f64,
    /// Certificate verification.
    #[serde(default)]
    pub tls: TlsOptions,
    /// What to do when the connection fails or drops.
    #[serde(default)]
    pub reconnection: ReconnectOptions,
    /// Bounds of the outgoing queue.
    #[serde(default)]
    pub queue: QueueOptions,
}

/// One more namespace on the connection.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct NamespaceOptions {
    /// The namespace, e.g. `/admin`.
    pub name: String,
    /// Its CONNECT payload.
    #[serde(default)]
    pub auth: Option<serde_json::Value>,
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

/// Reconnection with exponential backoff, like python-socketio's client.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct ReconnectOptions {
    /// Reconnect after a failure or a drop (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds before the first retry; doubles on each failed attempt (default 1).
    #[serde(default = "default_delay")]
    pub delay: f64,
    /// Upper bound of the delay in seconds, jitter included (default 5).
    #[serde(default = "default_max_delay")]
    pub max_delay: f64,
    /// Jitter: each delay is scaled by a random factor in `1 ± randomization` (default 0.5).
    #[serde(default = "default_randomization")]
    pub randomization: f64,
    /// Failed attempts in a row before giving up; 0 means never give up (default 0).
    #[serde(default)]
    pub attempts: u32,
}

/// Bounds of the outgoing queue (frames waiting for the socket).
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueueOptions {
    /// Most queued packets (default 256).
    #[serde(default = "default_max_frames")]
    pub max_frames: usize,
    /// Most queued bytes (default 8 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: usize,
}

fn default_path() -> String {
    "/socket.io/".into()
}
fn default_namespace() -> String {
    "/".into()
}
fn default_transports() -> Vec<Transport> {
    vec![Transport::Websocket]
}
fn default_connect_timeout() -> f64 {
    5.0
}
fn yes() -> bool {
    true
}
fn default_delay() -> f64 {
    1.0
}
fn default_max_delay() -> f64 {
    5.0
}
fn default_randomization() -> f64 {
    0.5
}
fn default_max_frames() -> usize {
    256
}
fn default_max_bytes() -> usize {
    8 << 20
}

impl Default for ReconnectOptions {
    fn default() -> Self {
        ReconnectOptions {
            enabled: true,
            delay: default_delay(),
            max_delay: default_max_delay(),
            randomization: default_randomization(),
            attempts: 0,
        }
    }
}

impl Default for QueueOptions {
    fn default() -> Self {
        QueueOptions {
            max_frames: default_max_frames(),
            max_bytes: default_max_bytes(),
        }
    }
}

impl ClientOptions {
    /// Options for `url` with every default.
    pub fn new(url: impl Into<String>) -> ClientOptions {
        ClientOptions {
            url: url.into(),
            socketio_path: default_path(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            namespace: default_namespace(),
            auth: None,
            extra_namespaces: Vec::new(),
            transports: default_transports(),
            connect_timeout: default_connect_timeout(),
            tls: TlsOptions::default(),
            reconnection: ReconnectOptions::default(),
            queue: QueueOptions::default(),
        }
    }

    /// Every namespace to join with its auth, the main one first.
    pub fn namespaces(&self) -> Vec<(String, Option<serde_json::Value>)> {
        std::iter::once((normalize_ns(&self.namespace), self.auth.clone()))
            .chain(
                self.extra_namespaces
                    .iter()
                    .map(|n| (normalize_ns(&n.name), n.auth.clone())),
            )
            .collect()
    }

    /// Checks the options and resolves the URL; the error names the offending field.
    pub fn validate(&self) -> Result<Endpoint, OptionsError> {
        let bad = |field: &'static str, why: String| OptionsError { field, why };
        if self.transports.is_empty() {
            return Err(bad("transports", "must name at least one transport".into()));
        }
        let secs = |field: &'static str, v: f64, min: f64| {
            if v.is_finite() && v >= min && v <= 86_400.0 {
                Ok(())
            } else {
                Err(bad(
                    field,
                    format!("{v} is not a number of seconds ≥ {min}"),
                ))
            }
        };
        secs("connect_timeout", self.connect_timeout, 0.01)?;
        secs("reconnection.delay", self.reconnection.delay, 0.0)?;
        secs("reconnection.max_delay", self.reconnection.max_delay, 0.0)?;
        if self.reconnection.max_delay < self.reconnection.delay {
            return Err(bad(
                "reconnection.max_delay",
                "must be ≥ reconnection.delay".into(),
            ));
        }
        if !(0.0..=1.0).contains(&self.reconnection.randomization) {
            return Err(bad(
                "reconnection.randomization",
                "must be between 0 and 1".into(),
            ));
        }
        if self.queue.max_frames == 0 || self.queue.max_bytes == 0 {
            return Err(bad(
                "queue",
                "max_frames and max_bytes must be at least 1".into(),
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (ns, _) in self.namespaces() {
            if !seen.insert(ns.clone()) {
                return Err(bad(
                    "extra_namespaces",
                    format!("namespace {ns} appears twice"),
                ));
            }
            if ns.contains(',') || ns.contains('?') {
                return Err(bad("namespace", format!("{ns:?} contains ',' or '?'")));
            }
        }
        for (k, v) in &self.headers {
            if http::HeaderName::try_from(k.as_str()).is_err()
                || http::HeaderValue::try_from(v.as_str()).is_err()
            {
                return Err(bad("headers", format!("{k:?} is not a valid HTTP header")));
            }
        }
        Endpoint::parse(self).map_err(|why| bad("url", why))
    }

    /// `connect_timeout` as a `Duration`.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_secs_f64(self.connect_timeout)
    }

    /// Whether the session starts with long-polling.
    pub fn starts_with_polling(&self) -> bool {
        self.transports.contains(&Transport::Polling)
    }

    /// Whether WebSocket may be used (directly or by upgrade).
    pub fn allows_websocket(&self) -> bool {
        self.transports.contains(&Transport::Websocket)
    }
}

fn normalize_ns(ns: &str) -> String {
    if ns.starts_with('/') {
        ns.to_owned()
    } else {
        format!("/{ns}")
    }
}

/// A setting that cannot work, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("relay setting `{field}`: {why}")]
pub struct OptionsError {
    /// The field, e.g. `url` or `reconnection.delay`.
    pub field: &'static str,
    /// What is wrong with it.
    pub why: String,
}

/// The resolved relay address: where to connect and what to ask for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// Whether to speak TLS.
    pub tls: bool,
    /// Host name or IP address (without brackets).
    pub host: String,
    /// TCP port (the scheme's default when the URL has none).
    pub port: u16,
    /// The Engine.IO path, starting and ending with `/`.
    pub path: String,
    /// `key=value` pairs, already percent-encoded, from the URL and the `query` option.
    pub query: Vec<String>,
}

impl Endpoint {
    fn parse(o: &ClientOptions) -> Result<Endpoint, String> {
        let uri: http::Uri = o.url.parse().map_err(|e| format!("{:?}: {e}", o.url))?;
        let tls = match uri.scheme_str() {
            Some("http" | "ws") => false,
            Some("https" | "wss") => true,
            _ => {
                return Err(format!(
                    "{:?}: the scheme must be http, https, ws or wss",
                    o.url
                ));
            }
        };
        let host = uri
            .host()
            .ok_or_else(|| format!("{:?} has no host", o.url))?
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        if !matches!(uri.path(), "" | "/") {
            return Err(format!(
                "{:?}: put the path in `socketio_path` and the namespace in `namespace`",
                o.url
            ));
        }
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let mut path = o.socketio_path.trim_matches('/').to_owned();
        path = if path.is_empty() {
            "/".into()
        } else {
            format!("/{path}/")
        };
        let mut query: Vec<String> = uri
            .query()
            .into_iter()
            .flat_map(|q| q.split('&'))
            .filter(|kv| !kv.is_empty())
            .map(str::to_owned)
            .collect();
        query.extend(
            o.query
                .iter()
                .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v))),
        );
        Ok(Endpoint {
            tls,
            host,
            port,
            path,
            query,
        })
    }

    /// `host:port` for the `Host` header (IPv6 in brackets).
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The path and query of an Engine.IO request (`/socket.io/?EIO=4&transport=…[&sid=…]…`).
    pub fn path_and_query(&self, transport: Transport, sid: Option<&str>) -> String {
        let mut s = format!(
            "{}?EIO=4&transport={}",
            self.path,
            match transport {
                Transport::Polling => "polling",
                Transport::Websocket => "websocket",
            }
        );
        if let Some(sid) = sid {
            s.push_str("&sid=");
            s.push_str(&percent_encode(sid));
        }
        for kv in &self.query {
            s.push('&');
            s.push_str(kv);
        }
        s
    }

    /// The full `ws://`/`wss://` URL of the WebSocket transport.
    pub fn ws_url(&self, sid: Option<&str>) -> String {
        format!(
            "{}://{}{}",
            if self.tls { "wss" } else { "ws" },
            self.authority(),
            self.path_and_query(Transport::Websocket, sid)
        )
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Exponential backoff with jitter, python-socketio style, capped at `max_delay`.
#[derive(Debug, Clone)]
pub struct Backoff {
    opts: ReconnectOptions,
    failures: u32,
}

impl Backoff {
    /// A fresh backoff (the next delay is `delay` ± jitter).
    pub fn new(opts: ReconnectOptions) -> Backoff {
        Backoff { opts, failures: 0 }
    }

    /// Forgets past failures (after a successful connection).
    pub fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failed attempts since the last reset.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure. Returns the delay before the next attempt, or `None` when reconnection
    /// is off or the attempts are used up. `random` is uniform in `[0, 1)`.
    pub fn next_delay(&mut self, random: f64) -> Option<Duration> {
        if !self.opts.enabled {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.opts.attempts != 0 && self.failures > self.opts.attempts {
            return None;
        }
        let exp = self.failures.saturating_sub(1).min(30);
        let base = (self.opts.delay * f64::from(1u32 << exp)).min(self.opts.max_delay);
        let jitter = 1.0 + self.opts.randomization * (2.0 * random - 1.0);
        let secs = (base * jitter).clamp(0.0, self.opts.max_delay);
        Some(Duration::from_secs_f64(secs))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_with_path_query_and_defaults() {
        let mut o = ClientOptions::new("wss://relay.example:8443?a=1");
        o.socketio_path = "custom".into();
        o.query.insert("device".into(), "pi 4&x".into());
        let e = o.validate().unwrap();
        assert!(e.tls);
        assert_eq!(e.authority(), "relay.example:8443");
        assert_eq!(
            e.ws_url(Some("s+d")),
            "wss://relay.example:8443/custom/?EIO=4&transport=websocket&sid=s%2Bd&a=1&device=pi%204%26x"
        );
        let e = ClientOptions::new("http://[::1]").validate().unwrap();
        assert_eq!(
            (e.tls, e.port, e.authority()),
            (false, 80, "[::1]:80".to_owned())
        );
        assert_eq!(
            e.path_and_query(Transport::Polling, None),
            "/socket.io/?EIO=4&transport=polling"
        );
        assert_eq!(
            ClientOptions::new("https://h").validate().unwrap().port,
            443
        );
    }

    #[test]
    fn bad_settings_name_their_field() {
        let field = |o: ClientOptions| o.validate().unwrap_err().field;
        assert_eq!(field(ClientOptions::new("ftp://h")), "url");
        assert_eq!(field(ClientOptions::new("http://h/chat")), "url");
        let mut o = ClientOptions::new("http://h");
        o.transports.clear();
        assert_eq!(field(o), "transports");
        let mut o = ClientOptions::new("http://h");
        o.reconnection.max_delay = 0.5;
        assert_eq!(field(o), "reconnection.max_delay");
        let mut o = ClientOptions::new("http://h");
        o.extra_namespaces.push(NamespaceOptions {
            name: "/".into(),
            auth: None,
        });
        assert_eq!(field(o), "extra_namespaces");
        let mut o = ClientOptions::new("http://h");
        o.headers.insert("bad header".into(), "x".into());
        assert_eq!(field(o), "headers");
    }

    #[test]
    fn deserializes_from_toml_and_rejects_unknown_keys() {
        let o: ClientOptions = toml::from_str(
            r#"
            url = "https://relay:443"
            namespace = "cam"
            auth = { token = "t", device = "pi" }
            transports = ["polling", "websocket"]
            extra_namespaces = [{ name = "/admin" }]
            tls = { ca_file = "/etc/ca.pem" }
            reconnection = { delay = 0.5, attempts = 3 }
            queue = { max_frames = 10 }
            "#,
        )
        .unwrap();
        assert_eq!(o.namespaces()[0].0, "/cam");
        assert_eq!(
            o.namespaces()[0].1,
            Some(serde_json::json!({"token":"t","device":"pi"}))
        );
        assert_eq!(o.namespaces()[1].0, "/admin");
        assert!(o.starts_with_polling() && o.allows_websocket());
        assert_eq!(o.reconnection.max_delay, 5.0);
        assert_eq!(o.queue.max_bytes, 8 << 20);
        assert!(o.validate().is_ok());
        let err = toml::from_str::<ClientOptions>("url = \"http://h\"\nretries = 3").unwrap_err();
        assert!(err.to_string().contains("retries"), "{err}");
        let err = toml::from_str::<ClientOptions>(
            "url = \"http://h\"\ntransports = [\"carrier-pigeon\"]",
        )
        .unwrap_err();
        assert!(err.to_string().contains("carrier-pigeon"), "{err}");
    }

    #[test]
    fn backoff_doubles_caps_and_gives_up() {
        let mut b = Backoff::new(ReconnectOptions {
            attempts: 5,
            ..ReconnectOptions::default()
        });
        let mid: Vec<f64> = (0..5)
            .map(|_| b.next_delay(0.5).unwrap().as_secs_f64())
            .collect();
        assert_eq!(mid, vec![1.0, 2.0, 4.0, 5.0, 5.0]);
        assert_eq!(b.next_delay(0.5), None);
        b.reset();
        assert_eq!(b.next_delay(0.0), Some(Duration::from_millis(500)));
        // Jitter never exceeds max_delay.
        for _ in 0..4 {
            assert!(b.next_delay(0.999).unwrap() <= Duration::from_secs(5));
        }
        let mut off = Backoff::new(ReconnectOptions {
            enabled: false,
            ..ReconnectOptions::default()
        });
        assert_eq!(off.next_delay(0.5), None);
    }
}
