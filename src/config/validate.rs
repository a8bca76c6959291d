//! Semantic checks after deserialization: impossible values, duplicates, conflicting options and
//! missing files. Every problem is collected (not just the first) and located by field path.

use super::duration::HumanDuration;
use super::error::{ConfigError, FieldPath, Locator, Problem};
use super::file::Config;
use super::id::{ID_RULE, is_valid_id};
use super::relay::{RelayConfig, Transport};
use super::server::{RelayServerConfig, ServerConfig, ServerTls};
use super::stream::StreamConfig;
use super::tokens::load_tokens;
use super::url::{self, UrlError};
use crate::files::{self, FileProblem};
use std::collections::HashMap;
use std::path::Path;

/// Collects located problems while walking a config.
pub(crate) struct Checker<'l> {
    loc: &'l Locator<'l>,
    pub(crate) problems: Vec<Problem>,
}

impl<'l> Checker<'l> {
    pub(crate) fn new(loc: &'l Locator<'l>) -> Self {
        Checker {
            loc,
            problems: Vec::new(),
        }
    }

    fn err(&mut self, at: &FieldPath, message: impl Into<String>) {
        self.problems.push(self.loc.at_field(at, message.into()));
    }

    /// Reports `message` at `at` unless `ok`.
    fn ensure(&mut self, ok: bool, at: &FieldPath, message: impl FnOnce() -> String) {
        if !ok {
            self.err(at, message());
        }
    }

    fn range<T: PartialOrd + std::fmt::Display>(&mut self, at: &FieldPath, v: T, lo: T, hi: T) {
        self.ensure(v >= lo && v <= hi, at, || {
            format!("must be between {lo} and {hi} (got {v})")
        });
    }

    fn id(&mut self, at: &FieldPath, v: &str) {
        self.ensure(is_valid_id(v), at, || {
            format!("must be {ID_RULE} (got {v:?})")
        });
    }

    fn absolute_path(&mut self, at: &FieldPath, v: &str, what: &str) {
        self.ensure(v.starts_with('/'), at, || {
            format!("{what} must start with \"/\" (got {v:?})")
        });
    }

    /// An absolute URL path, as a request line carries it.
    fn url_path(&mut self, at: &FieldPath, v: &str) {
        self.absolute_path(at, v, "the path");
        self.ensure(!v.starts_with('/') || url::is_path(v), at, || {
            format!("not a URL path (got {v:?})")
        });
    }

    fn non_empty(&mut self, at: &FieldPath, v: Option<&str>) {
        if v.is_some_and(|v| v.trim().is_empty()) {
            self.err(at, "must not be empty");
        }
    }

    fn positive(&mut self, at: &FieldPath, d: HumanDuration) {
        self.ensure(!d.get().is_zero(), at, || "must be greater than 0".into());
    }

    /// A file the program will read: a regular file within the size bound (not opened: it may
    /// be readable by the service's user only).
    fn file_exists(&mut self, at: &FieldPath, file: Option<&Path>) {
        let Some(file) = file else { return };
        let checked = std::fs::metadata(file)
            .map_err(FileProblem::Open)
            .and_then(|m| files::check(&m));
        if let Err(e) = checked {
            self.err(at, format!("{}: {e}", file.display()));
        }
    }

    fn exclusive(&mut self, at: &FieldPath, a: bool, b: bool, names: (&str, &str)) {
        self.ensure(!(a && b), at, || {
            format!("set either {} or {}, not both", names.0, names.1)
        });
    }
}

/// Checks a whole config.
pub(crate) fn config(c: &mut Checker<'_>, cfg: &Config) {
    let root = FieldPath::default();
    c.id(&root.key("device"), &cfg.device);
    if let Some(user) = &cfg.user {
        let ok = !user.is_empty()
            && user.len() <= 32
            && user
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_".contains(&b));
        c.ensure(ok, &root.key("user"), || {
            format!("not a valid user name (got {user:?})")
        });
    }
    c.ensure(
        !cfg.streams.is_empty() || cfg.relay_server.is_some(),
        &root.key("stream"),
        || "nothing to run: define at least one [[stream]] (or a [relay_server])".into(),
    );
    server(c, &root.key("server"), &cfg.server);

    let mut seen_relays = HashMap::new();
    for (i, relay) in cfg.relays.iter().enumerate() {
        let at = root.key("relay").index(i);
        self::relay(c, &at, relay);
        let key = (relay.url.as_str(), relay.namespace.as_str());
        if let Some(first) = seen_relays.insert(key, i) {
            c.err(
                &at.key("url"),
                format!(
                    "duplicate relay {} namespace {} (also relay[{first}])",
                    relay.url, relay.namespace
                ),
            );
        }
    }

    let mut seen_streams = HashMap::new();
    for (i, s) in cfg.streams.iter().enumerate() {
        let at = root.key("stream").index(i);
        stream(c, &at, s);
        if let Some(first) = seen_streams.insert(s.id.as_str(), i) {
            c.err(
                &at.key("id"),
                format!("duplicate stream id {:?} (also stream[{first}])", s.id),
            );
        }
    }

    if let Some(rs) = &cfg.relay_server {
        relay_server(c, &root.key("relay_server"), rs);
    }
    log_level(c, &root.key("log").key("level"), &cfg.log.level);
}

fn server(c: &mut Checker<'_>, at: &FieldPath, s: &ServerConfig) {
    c.url_path(&at.key("path"), &s.path);
    for (i, origin) in s.cors_origins.iter().enumerate() {
        let at = at.key("cors_origins").index(i);
        match url::parse(origin, &["http", "https"]) {
            _ if origin == "*" => {}
            Err(e @ UrlError::Port(_)) => c.err(&at, e.to_string()),
            Ok(u)
                if u.path_and_query().is_none_or(|p| p.as_str() == "/")
                    && !origin.ends_with('/') => {}
            _ => c.err(
                &at,
                format!(
                    "not an origin: expected \"*\" or \"http(s)://host[:port]\" (got {origin:?})"
                ),
            ),
        }
    }
    c.non_empty(&at.key("viewer_token"), s.viewer_token.as_deref());
    c.non_empty(&at.key("viewer_password"), s.viewer_password.as_deref());
    c.exclusive(
        &at.key("viewer_password"),
        s.viewer_token.is_some(),
        s.viewer_password.is_some(),
        ("viewer_token", "viewer_password"),
    );
    c.positive(&at.key("ping_interval"), s.ping_interval);
    c.positive(&at.key("ping_timeout"), s.ping_timeout);
    c.range(&at.key("max_payload"), s.max_payload.get(), 1024, 256 << 20);
    c.range(&at.key("max_connections"), s.max_connections, 1, 1_000_000);
    let per_address = s.max_connections_per_address;
    c.ensure(
        per_address <= s.max_connections,
        &at.key("max_connections_per_address"),
        || {
            format!(
                "must be at most max_connections ({}), or 0 for no limit (got {per_address})",
                s.max_connections
            )
        },
    );
    c.positive(&at.key("idle_timeout"), s.idle_timeout);
    c.positive(&at.key("header_timeout"), s.header_timeout);
    c.positive(&at.key("body_timeout"), s.body_timeout);
    if let Some(tls) = &s.tls {
        server_tls(c, &at.key("tls"), tls);
    }
}

fn server_tls(c: &mut Checker<'_>, at: &FieldPath, tls: &ServerTls) {
    let before = c.problems.len();
    if tls.self_signed {
        c.ensure(
            tls.cert.is_some() == tls.key.is_some(),
            &at.key(if tls.cert.is_some() { "cert" } else { "key" }),
            || "with self_signed, give both cert and key (where to keep them) or neither".into(),
        );
    } else {
        c.ensure(tls.cert.is_some(), &at.key("cert"), || {
            "missing: give cert and key files, or set self_signed = true".into()
        });
        c.ensure(tls.key.is_some(), &at.key("key"), || {
            "missing: give cert and key files, or set self_signed = true".into()
        });
        c.file_exists(&at.key("cert"), tls.cert.as_deref());
        c.file_exists(&at.key("key"), tls.key.as_deref());
    }
    let (Some(cert), Some(key)) = (&tls.cert, &tls.key) else {
        return;
    };
    if c.problems.len() > before || !(tls.self_signed && !cert.exists() && !key.exists()) {
        // Whether existing files load is checked at startup (`service::check_tls_files`).
        return;
    }
    // Generated at start: the directory must be one (or creatable below one).
    for (name, file) in [("cert", cert), ("key", key)] {
        let existing = file.ancestors().skip(1).find(|d| d.exists());
        c.ensure(existing.is_none_or(Path::is_dir), &at.key(name), || {
            format!(
                "cannot create {}: {} is not a directory",
                file.display(),
                existing.map_or(String::new(), |d| d.display().to_string())
            )
        });
    }
}

fn relay(c: &mut Checker<'_>, at: &FieldPath, r: &RelayConfig) {
    match url::parse(&r.url, &["http", "https", "ws", "wss"]) {
        Ok(u) if !matches!(u.path(), "" | "/") => c.err(
            &at.key("url"),
            format!(
                "no path allowed in {:?}: put it in socketio_path, and the namespace in namespace",
                r.url
            ),
        ),
        Ok(_) => {}
        Err(e) => c.err(&at.key("url"), e.to_string()),
    }
    c.absolute_path(&at.key("namespace"), &r.namespace, "a namespace");
    c.ensure(
        !r.namespace.contains([',', '?']),
        &at.key("namespace"),
        || format!("{:?} contains ',' or '?'", r.namespace),
    );
    c.url_path(&at.key("socketio_path"), &r.socketio_path);
    c.non_empty(&at.key("token"), r.token.as_deref());
    c.exclusive(
        &at.key("token_file"),
        r.token.is_some(),
        r.token_file.is_some(),
        ("token", "token_file"),
    );
    c.file_exists(&at.key("token_file"), r.token_file.as_deref());
    let transports_ok = matches!(
        r.transports.as_slice(),
        [Transport::Websocket] | [Transport::Polling, Transport::Websocket] | [Transport::Polling]
    );
    c.ensure(transports_ok, &at.key("transports"), || {
        "must be [\"websocket\"], [\"polling\", \"websocket\"] or [\"polling\"]".into()
    });
    for (name, value) in &r.headers {
        let at = at.key("headers").key(name);
        c.ensure(
            http::HeaderName::from_bytes(name.as_bytes()).is_ok(),
            &at,
            || format!("{name:?} is not a valid HTTP header name"),
        );
        c.ensure(http::HeaderValue::from_str(value).is_ok(), &at, || {
            "not a valid HTTP header value".into()
        });
    }
    c.positive(&at.key("connect_timeout"), r.connect_timeout);
    c.file_exists(&at.key("tls").key("ca_file"), r.tls.ca_file.as_deref());

    let rc = &r.reconnection;
    let at_rc = at.key("reconnection");
    c.positive(&at_rc.key("delay"), rc.delay);
    c.ensure(rc.max_delay >= rc.delay, &at_rc.key("max_delay"), || {
        format!(
            "must not be shorter than delay ({} < {})",
            rc.max_delay, rc.delay
        )
    });
    c.range(&at_rc.key("randomization"), rc.randomization, 0.0, 1.0);

    let at_q = at.key("queue");
    c.range(&at_q.key("max_frames"), r.queue.max_frames, 1, 1 << 20);
    // At least 64 KiB so a keyframe fits.
    c.range(
        &at_q.key("max_bytes"),
        r.queue.max_bytes.get(),
        64 << 10,
        1 << 30,
    );
}

fn stream(c: &mut Checker<'_>, at: &FieldPath, s: &StreamConfig) {
    c.id(&at.key("id"), &s.id);
    c.ensure(s.video.is_some() || s.audio.is_some(), at, || {
        "a stream needs a [stream.video] or a [stream.audio] table (or both)".into()
    });
    let video = s.video.as_ref().map(|v| ("video", v.validate()));
    let audio = s.audio.as_ref().map(|a| ("audio", a.validate()));
    for (track, result) in video.into_iter().chain(audio) {
        if let Err(e) = result {
            c.err(&at.key(track).key(e.field), e.problem);
        }
    }
    if let (Some(v), Some(a)) = (&s.video, &s.audio) {
        c.ensure(v.id != a.id, &at.key("audio").key("id"), || {
            format!("duplicate track id {:?} (also video.id)", a.id)
        });
    }
}

fn relay_server(c: &mut Checker<'_>, at: &FieldPath, rs: &RelayServerConfig) {
    server(c, at, &rs.server);
    c.absolute_path(
        &at.key("publisher_namespace"),
        &rs.publisher_namespace,
        "a namespace",
    );
    c.absolute_path(
        &at.key("viewer_namespace"),
        &rs.viewer_namespace,
        "a namespace",
    );
    c.ensure(
        rs.publisher_namespace != rs.viewer_namespace,
        &at.key("publisher_namespace"),
        || {
            format!(
                "must differ from viewer_namespace (both {:?})",
                rs.viewer_namespace
            )
        },
    );
    c.exclusive(
        &at.key("tokens_file"),
        !rs.tokens.is_empty(),
        rs.tokens_file.is_some(),
        ("tokens", "tokens_file"),
    );
    c.ensure(
        !rs.tokens.is_empty() || rs.tokens_file.is_some(),
        &at.key("tokens"),
        || "no publisher tokens: set tokens = { device = \"token\" } or tokens_file".into(),
    );
    for (device, token) in &rs.tokens {
        let at = at.key("tokens").key(device);
        c.id(&at, device);
        c.non_empty(&at, Some(token));
    }
    if let Some(file) = &rs.tokens_file {
        match load_tokens(file) {
            Ok(_) => {}
            Err(ConfigError::Read(e)) => c.err(&at.key("tokens_file"), e.to_string()),
            Err(e) => {
                c.err(
                    &at.key("tokens_file"),
                    format!("invalid tokens file {} (see below)", file.display()),
                );
                c.problems.extend(e.problems().iter().cloned());
            }
        }
    }
    if let Some(adapter) = &rs.adapter {
        // The same parser the Redis bus uses, so what passes here connects there; a port out
        // of range said as such first (redis only says "did not parse").
        if let Err(e @ UrlError::Port(_)) = url::parse(adapter, &["redis", "rediss"]) {
            c.err(&at.key("adapter"), e.to_string());
        } else if let Err(e) = redis::IntoConnectionInfo::into_connection_info(adapter.as_str()) {
            c.err(
                &at.key("adapter"),
                format!("not a usable Redis URL {adapter:?} (expected redis://host:port/db): {e}"),
            );
        }
    }
    c.ensure(
        !rs.adapter_prefix.is_empty()
            && rs
                .adapter_prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b)),
        &at.key("adapter_prefix"),
        || {
            format!(
                "must be non-empty, among A-Z a-z 0-9 - _ . : (got {:?})",
                rs.adapter_prefix
            )
        },
    );
    c.positive(&at.key("cache_ttl"), rs.cache_ttl);
    c.range(
        &at.key("max_streams_per_publisher"),
        rs.max_streams_per_publisher,
        1,
        100_000,
    );
    // At least one 64 KiB keyframe; at most 1 TiB.
    c.range(
        &at.key("max_cache_per_publisher"),
        rs.max_cache_per_publisher.get(),
        64 << 10,
        1 << 40,
    );
}

fn log_level(c: &mut Checker<'_>, at: &FieldPath, level: &str) {
    let simple = ["off", "error", "warn", "info", "debug", "trace"];
    let ok = if level.contains('=') || level.contains(',') {
        tracing_subscriber::EnvFilter::try_new(level).is_ok()
    } else {
        simple.contains(&level.to_ascii_lowercase().as_str())
    };
    c.ensure(ok, at, || {
        format!(
            "expected off, error, warn, info, debug, trace or directives like \
             \"info,sioedge=debug\" (got {level:?})"
        )
    });
}
