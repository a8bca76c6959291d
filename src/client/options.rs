//! The client's settings and the URLs built from them. The `[[relay]]` schema lives in the
//! config ([`crate::config::RelayConfig`]); the gateway fills these options from it, and they
//! take its value types ([`Transport`], [`TlsOptions`], [`Reconnection`], [`QueueLimits`]) so the
//! two cannot drift apart.

use crate::config::{
    DEFAULT_CONNECT_TIMEOUT, DEFAULT_SOCKETIO_PATH, QueueLimits, Reconnection, TlsOptions,
    Transport, default_transports,
};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// How to reach one relay. [`ClientOptions::new`] gives every default but the URL.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientOptions {
    /// The relay: `http://`, `https://`, `ws://` or `wss://` host and optional port, with optional
    /// query parameters (`?key=value`). Any path must be given as `socketio_path` instead.
    pub url: String,
    /// The server's Socket.IO endpoint path (python-socketio's `socketio_path`), `/socket.io/` by default.
    pub socketio_path: String,
    /// Extra query parameters sent on every Engine.IO request.
    pub query: BTreeMap<String, String>,
    /// Extra HTTP headers sent on every request (e.g. `Authorization` for a proxy).
    pub headers: BTreeMap<String, String>,
    /// The namespace to join, `/` by default.
    pub namespace: String,
    /// The CONNECT payload (auth) for `namespace`, any JSON value, e.g. `{"token": "…"}`.
    pub auth: Option<serde_json::Value>,
    /// More namespaces to join on the same connection, each with its own auth.
    pub extra_namespaces: Vec<NamespaceOptions>,
    /// `[Websocket]` (default), `[Polling, Websocket]` (start with long-polling, upgrade to
    /// WebSocket) or `[Polling]` (for proxies that block WebSocket).
    pub transports: Vec<Transport>,
    /// Allowed for TCP + TLS + the Engine.IO handshake + the namespace CONNECTs (default 5 s).
    pub connect_timeout: Duration,
    /// Certificate verification.
    pub tls: TlsOptions,
    /// What to do when the connection fails or drops.
    pub reconnection: Reconnection,
    /// Bounds of the outgoing queue.
    pub queue: QueueLimits,
}

/// Builds the CONNECT payload of a namespace at every connection attempt (e.g. from a token
/// file that may be rotated); replaces the static `auth` of the options.
pub type AuthProvider = Arc<dyn Fn(&str) -> Option<serde_json::Value> + Send + Sync>;

/// One more namespace on the connection.
#[derive(Debug, Clone, PartialEq)]
pub struct NamespaceOptions {
    /// The namespace, e.g. `/admin`.
    pub name: String,
    /// Its CONNECT payload.
    pub auth: Option<serde_json::Value>,
}

impl ClientOptions {
    /// Options for `url` with every default.
    pub fn new(url: impl Into<String>) -> ClientOptions {
        ClientOptions {
            url: url.into(),
            socketio_path: DEFAULT_SOCKETIO_PATH.into(),
            query: BTreeMap::new(),
            headers: BTreeMap::new(),
            namespace: "/".into(),
            auth: None,
            extra_namespaces: Vec::new(),
            transports: default_transports(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT.get(),
            tls: TlsOptions::default(),
            reconnection: Reconnection::default(),
            queue: QueueLimits::default(),
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
        let within = |field: &'static str, v: Duration, min: Duration| {
            if v >= min && v <= Duration::from_secs(86_400) {
                Ok(())
            } else {
                Err(bad(
                    field,
                    format!("{v:?} is not between {min:?} and a day"),
                ))
            }
        };
        within(
            "connect_timeout",
            self.connect_timeout,
            Duration::from_millis(10),
        )?;
        within(
            "reconnection.delay",
            self.reconnection.delay.get(),
            Duration::ZERO,
        )?;
        within(
            "reconnection.max_delay",
            self.reconnection.max_delay.get(),
            Duration::ZERO,
        )?;
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
        if self.queue.max_frames == 0 || self.queue.max_bytes.get() == 0 {
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
        // A port that is written but is not a number in 1..=65535 is an error, not the default.
        let host_port = uri
            .authority()
            .map_or("", |a| a.as_str())
            .rsplit('@')
            .next()
            .unwrap_or("");
        let written = host_port
            .rsplit_once(':')
            .filter(|(host, _)| !host.starts_with('[') || host.ends_with(']'))
            .map(|(_, port)| port);
        let port = match written {
            None if tls => 443,
            None => 80,
            Some(w) => w
                .parse::<u16>()
                .ok()
                .filter(|&p| p > 0 && w.bytes().all(|b| b.is_ascii_digit()))
                .ok_or_else(|| {
                    format!("{:?}: port must be between 1 and 65535 (got {w:?})", o.url)
                })?,
        };
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
pub(super) struct Backoff {
    opts: Reconnection,
    failures: u32,
}

impl Backoff {
    /// A fresh backoff (the next delay is `delay` ± jitter).
    pub(super) fn new(opts: Reconnection) -> Backoff {
        Backoff { opts, failures: 0 }
    }

    /// Forgets past failures (after a successful connection).
    pub(super) fn reset(&mut self) {
        self.failures = 0;
    }

    /// Failed attempts since the last reset.
    pub(super) fn failures(&self) -> u32 {
        self.failures
    }

    /// Records a failure. Returns the delay before the next attempt, or `None` when reconnection
    /// is off or the attempts are used up. `random` is uniform in `[0, 1)`.
    pub(super) fn next_delay(&mut self, random: f64) -> Option<Duration> {
        if !self.opts.enabled {
            return None;
        }
        self.failures = self.failures.saturating_add(1);
        if self.opts.attempts != 0 && self.failures > self.opts.attempts {
            return None;
        }
        let exp = self.failures.saturating_sub(1).min(30);
        let (delay, max) = (
            self.opts.delay.get().as_secs_f64(),
            self.opts.max_delay.get().as_secs_f64(),
        );
        let base = (delay * f64::from(1u32 << exp)).min(max);
        let jitter = 1.0 + self.opts.randomization * (2.0 * random - 1.0);
        let secs = (base * jitter).clamp(0.0, max);
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
        for bad_port in [
            "http://h:99999",
            "http://h:0",
            "http://h:",
            "http://h:+80",
            "http://[::1]:8a",
        ] {
            assert_eq!(field(ClientOptions::new(bad_port)), "url", "{bad_port}");
        }
        assert_eq!(
            ClientOptions::new("http://u:p@h:8080")
                .validate()
                .unwrap()
                .port,
            8080
        );
        let mut o = ClientOptions::new("http://h");
        o.transports.clear();
        assert_eq!(field(o), "transports");
        let mut o = ClientOptions::new("http://h");
        o.reconnection.max_delay = Duration::from_millis(500).into();
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
    fn backoff_doubles_caps_and_gives_up() {
        let mut b = Backoff::new(Reconnection {
            attempts: 5,
            ..Reconnection::default()
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
        let mut off = Backoff::new(Reconnection {
            enabled: false,
            ..Reconnection::default()
        });
        assert_eq!(off.next_delay(0.5), None);
    }
}
