//! The TOML configuration file: schema, loading, validation and the embedded default.
//!
//! One file format serves `sioedge run` (`device`, `[server]`, `[[relay]]`, `[[stream]]`), and
//! `sioedge relay` (`[relay_server]`); `[log]` and `user` are common. Every problem is reported as
//! `FILE:LINE:COL: FIELD: MESSAGE` (see [`ConfigError`]). Conventions:
//! - durations ([`HumanDuration`]): `"25s"`, `"300ms"`, `"2m"`, or an integer number of
//!   milliseconds;
//! - sizes ([`ByteSize`]): `"1MiB"`, `"64KB"`, or an integer number of bytes;
//! - track settings (`[stream.video]`, `[stream.audio]`) are media's [`VideoSpec`]/[`AudioSpec`]
//!   and use plain numbers (`bitrate_kbps`, `keyframe_interval` in seconds, `frame_ms`);
//! - relative file paths are relative to the config file's directory.
//!
//! `target-configs/sioedge.example.toml` documents every option next to its default.
//! [`Config`] is `PartialEq` so a reload (SIGHUP) can diff streams and relays.

mod duration;
mod error;
mod relay;
mod server;
mod size;
mod stream;
mod units;
mod validate;

pub use duration::HumanDuration;
pub use error::{ConfigError, Problem};
pub use relay::{
    DEFAULT_CONNECT_TIMEOUT, QueueLimits, Reconnection, RelayConfig, TlsOptions, Transport,
    default_transports,
};
pub use server::{
    DuplicatePublisher, LogConfig, RelayServerConfig, ServerConfig, ServerTls, ViewerAuth,
    state_dir,
};
pub use size::ByteSize;
pub use stream::StreamConfig;

use crate::media::{AudioSpec, VideoSpec};
use error::Locator;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use toml::de::DeTable;

/// Where `sioedge run` looks for its config when `--config` is not given.
pub const DEFAULT_PATH: &str = "/etc/sioedge/sioedge.toml";

/// The Socket.IO endpoint path of servers and relays unless configured otherwise.
pub const DEFAULT_SOCKETIO_PATH: &str = "/socket.io/";

/// A validated configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// This gateway's device id (sent to relays in the CONNECT auth); defaults to the host name.
    #[serde(default = "default_device")]
    pub device: String,
    /// When started as root: the user to switch to once the ports are bound.
    #[serde(default)]
    pub user: Option<String>,
    /// The gateway's LAN server.
    #[serde(default)]
    pub server: ServerConfig,
    /// Relays every stream is published to (`[[relay]]`, zero or more).
    #[serde(default, rename = "relay")]
    pub relays: Vec<RelayConfig>,
    /// Streams to capture (`[[stream]]`).
    #[serde(default, rename = "stream")]
    pub streams: Vec<StreamConfig>,
    /// Settings of `sioedge relay`.
    #[serde(default)]
    pub relay_server: Option<RelayServerConfig>,
    /// Logging.
    #[serde(default)]
    pub log: LogConfig,
    /// The file this config was read from; `None` for the embedded default.
    #[serde(skip)]
    pub source: Option<PathBuf>,
}

/// The device id used when the file sets none: the host name, else `sioedge`.
fn default_device() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|h| h.trim().to_owned())
        .ok()
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 64
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .unwrap_or_else(|| "sioedge".into())
}

impl Config {
    /// The config `sioedge run` uses: the file at `path`, else [`DEFAULT_PATH`] if it exists, else
    /// [`Config::embedded_default`].
    pub fn load(path: Option<&Path>) -> Result<Config, ConfigError> {
        match path {
            Some(p) => Config::from_file(p),
            None if Path::new(DEFAULT_PATH).exists() => Config::from_file(Path::new(DEFAULT_PATH)),
            None => Ok(Config::embedded_default()),
        }
    }

    /// Reads, parses and validates one file.
    pub fn from_file(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut cfg = Config::parse(&text, &path.display().to_string(), base)?;
        cfg.source = Some(path.to_owned());
        Ok(cfg)
    }

    /// Parses and validates config text; `file` names it in errors and relative paths are
    /// resolved against `base`.
    pub fn parse(text: &str, file: &str, base: &Path) -> Result<Config, ConfigError> {
        let (mut cfg, loc) = deserialize::<Config>(text, file)?;
        cfg.rebase_paths(base);
        let mut checker = validate::Checker::new(&loc);
        validate::config(&mut checker, &cfg);
        let mut problems = checker.problems;
        if problems.is_empty() {
            return Ok(cfg);
        }
        // In file order; problems inside a referenced file (tokens) come last.
        problems.sort_by_key(|p| (p.file != file, p.line, p.column));
        Err(ConfigError::Invalid(problems))
    }

    /// The config used when no file exists: one stream `cam0` with `auto` video and audio (test
    /// pattern and tone without devices), the viewer on http://127.0.0.1:8080, no relay.
    pub fn embedded_default() -> Config {
        Config {
            device: default_device(),
            user: None,
            server: ServerConfig::default(),
            relays: Vec::new(),
            streams: vec![StreamConfig {
                id: "cam0".into(),
                video: Some(VideoSpec::default()),
                audio: Some(AudioSpec::default()),
            }],
            relay_server: None,
            log: LogConfig::default(),
            source: None,
        }
    }

    /// Checks that this config can run the gateway (`sioedge run`): at least one stream.
    pub fn for_gateway(&self) -> Result<(), ConfigError> {
        if self.streams.is_empty() {
            return Err(self.whole_file_error("no [[stream]] defined: `sioedge run` needs one"));
        }
        Ok(())
    }

    /// The `[relay_server]` section `sioedge relay` needs.
    pub fn for_relay(&self) -> Result<&RelayServerConfig, ConfigError> {
        self.relay_server.as_ref().ok_or_else(|| {
            self.whole_file_error("no [relay_server] section: `sioedge relay` needs one")
        })
    }

    fn whole_file_error(&self, message: &str) -> ConfigError {
        ConfigError::Invalid(vec![Problem {
            file: self.file_label(),
            line: 1,
            column: 1,
            field: String::new(),
            message: message.into(),
        }])
    }

    /// A problem found after loading (e.g. a TLS file checked at startup) at `field`, written as
    /// errors print it (`server.tls.cert`), located in this config's file like validation's own
    /// problems. The file is read again for that; at 1:1 when it cannot be.
    pub fn problem_at(&self, field: &str, message: String) -> Problem {
        let text = self
            .source
            .as_ref()
            .and_then(|p| std::fs::read_to_string(p).ok())
            .unwrap_or_default();
        let (doc, _) = DeTable::parse_recoverable(&text);
        let loc = Locator::new(self.file_label(), &text, Some(&doc));
        loc.at_field(&error::FieldPath::parse(field), message)
    }

    fn file_label(&self) -> String {
        self.source
            .as_ref()
            .map_or("<embedded default>".into(), |p| p.display().to_string())
    }

    /// One line describing what this config runs (printed by `check-config`).
    pub fn summary(&self) -> String {
        let mut parts = vec![format!("device {}", self.device)];
        if !self.streams.is_empty() {
            let streams: Vec<String> = self
                .streams
                .iter()
                .map(|s| {
                    let mut tracks = Vec::new();
                    if let Some(v) = &s.video {
                        tracks.push(format!(
                            "video {:?} {}x{}@{} from {}",
                            v.codec, v.width, v.height, v.fps, v.source
                        ));
                    }
                    if let Some(a) = &s.audio {
                        tracks.push(format!(
                            "audio {:?} {}Hz from {}",
                            a.codec, a.sample_rate, a.source
                        ));
                    }
                    format!("{} [{}]", s.id, tracks.join(", ")).to_lowercase()
                })
                .collect();
            parts.push(format!(
                "{} stream(s): {}",
                self.streams.len(),
                streams.join("; ")
            ));
            parts.push(format!(
                "server on {}{}",
                self.server.listen,
                https(self.server.tls.as_ref())
            ));
            parts.push(format!("{} relay(s)", self.relays.len()));
        }
        if let Some(rs) = &self.relay_server {
            parts.push(format!(
                "relay server on {}{}{}",
                rs.server.listen,
                https(rs.server.tls.as_ref()),
                rs.adapter
                    .as_deref()
                    .map(|a| format!(" via {a}"))
                    .unwrap_or_default()
            ));
        }
        parts.join(", ")
    }

    /// Makes every relative file path in the config relative to `base` (the file's directory).
    fn rebase_paths(&mut self, base: &Path) {
        let rebase = |p: &mut Option<PathBuf>| {
            if let Some(p) = p.as_mut().filter(|p| p.is_relative()) {
                *p = base.join(&*p);
            }
        };
        let rebase_tls = |tls: &mut Option<ServerTls>| {
            if let Some(tls) = tls {
                tls.default_paths();
                rebase(&mut tls.cert);
                rebase(&mut tls.key);
            }
        };
        rebase_tls(&mut self.server.tls);
        for r in &mut self.relays {
            rebase(&mut r.token_file);
            rebase(&mut r.tls.ca_file);
        }
        if let Some(rs) = &mut self.relay_server {
            rebase(&mut rs.tokens_file);
            rebase_tls(&mut rs.server.tls);
        }
    }
}

/// How `summary` describes a server's TLS: nothing, ` (https)`, or where the self-signed pair is.
fn https(tls: Option<&ServerTls>) -> String {
    match tls {
        None => String::new(),
        Some(ServerTls {
            self_signed: true,
            cert: Some(cert),
            ..
        }) => format!(" (https, self-signed certificate {})", cert.display()),
        Some(_) => " (https)".into(),
    }
}

/// What a reload changes in a list of items identified by a key (streams by id, relays by url
/// and namespace): the gateway restarts only what is listed here and leaves the rest running.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Diff<'a, T> {
    /// In the new config only.
    pub added: Vec<&'a T>,
    /// In the old config only.
    pub removed: Vec<&'a T>,
    /// In both with the same key but different settings: (old, new).
    pub changed: Vec<(&'a T, &'a T)>,
}

impl<T> Diff<'_, T> {
    /// True when nothing was added, removed or changed.
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.changed.is_empty()
    }
}

fn diff_by<'a, T: PartialEq, K: PartialEq>(
    old: &'a [T],
    new: &'a [T],
    key: impl Fn(&T) -> K,
) -> Diff<'a, T> {
    let find = |list: &'a [T], k: &K| list.iter().find(|x| key(x) == *k);
    Diff {
        added: new
            .iter()
            .filter(|n| find(old, &key(n)).is_none())
            .collect(),
        removed: old
            .iter()
            .filter(|o| find(new, &key(o)).is_none())
            .collect(),
        changed: old
            .iter()
            .filter_map(|o| find(new, &key(o)).filter(|n| *n != o).map(|n| (o, n)))
            .collect(),
    }
}

impl Config {
    /// Streams added, removed or changed (by id) between this config and `new`.
    pub fn diff_streams<'a>(&'a self, new: &'a Config) -> Diff<'a, StreamConfig> {
        diff_by(&self.streams, &new.streams, |s| s.id.clone())
    }

    /// Relays added, removed or changed (by url and namespace) between this config and `new`.
    pub fn diff_relays<'a>(&'a self, new: &'a Config) -> Diff<'a, RelayConfig> {
        diff_by(&self.relays, &new.relays, |r| {
            (r.url.clone(), r.namespace.clone())
        })
    }
}

impl RelayServerConfig {
    /// The publisher tokens (device id → token): the inline table, or the tokens file read now
    /// (so a reload picks up edits).
    pub fn publisher_tokens(&self) -> Result<BTreeMap<String, String>, ConfigError> {
        match &self.tokens_file {
            Some(file) => load_tokens(file),
            None => Ok(self.tokens.clone()),
        }
    }
}

/// Reads a tokens file: TOML lines `device = "token"`.
fn load_tokens(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    let (tokens, loc) =
        deserialize::<BTreeMap<String, String>>(&text, &path.display().to_string())?;
    let problems: Vec<Problem> = tokens
        .iter()
        .filter(|(device, token)| device.is_empty() || token.trim().is_empty())
        .map(|(device, _)| {
            loc.at_field(
                &error::FieldPath::default().key(device),
                "a device needs a non-empty token".into(),
            )
        })
        .collect();
    if problems.is_empty() {
        Ok(tokens)
    } else {
        Err(ConfigError::Invalid(problems))
    }
}

/// Parses TOML text into `T`, keeping a [`Locator`] to place later semantic errors.
fn deserialize<'t, T: DeserializeOwned>(
    text: &'t str,
    file: &str,
) -> Result<(T, Locator<'t>), ConfigError> {
    let (doc, syntax) = DeTable::parse_recoverable(text);
    let loc = Locator::new(file.into(), text, Some(&doc));
    // Only the first syntax error: the ones after it are often echoes of the same mistake.
    if let Some(e) = syntax.first() {
        let key = e.span().and_then(|s| text.get(s)).unwrap_or_default();
        let message = match e.message() {
            "duplicate key" if !key.is_empty() && !key.contains('\n') => {
                format!("duplicate key `{key}`")
            }
            m => m.to_owned(),
        };
        return Err(ConfigError::Invalid(vec![loc.at_span(e.span(), message)]));
    }
    match toml::from_str::<T>(text) {
        Ok(value) => Ok((value, loc)),
        Err(e) => Err(ConfigError::Invalid(vec![
            loc.at_span(e.span(), e.message().to_owned()),
        ])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid_and_matches_an_empty_stream_file() {
        let d = Config::embedded_default();
        assert_eq!(d.streams.len(), 1);
        assert_eq!(d.server.listen.to_string(), "127.0.0.1:8080");
        assert!(d.relays.is_empty());
        let text = "[[stream]]\nid = \"cam0\"\n[stream.video]\n[stream.audio]\n";
        let parsed = Config::parse(text, "t.toml", Path::new("/")).expect("valid");
        assert_eq!(parsed, d);
    }

    #[test]
    fn problems_found_later_are_located_in_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("c.toml");
        let text = "[server]\nlisten = \"127.0.0.1:0\"\ntls = { cert = \"c.pem\", key = \"k.pem\" }\n[[stream]]\nid = \"a\"\n[stream.audio]\n";
        std::fs::write(&file, text).expect("write");
        std::fs::write(dir.path().join("c.pem"), "x").expect("write");
        std::fs::write(dir.path().join("k.pem"), "x").expect("write");
        let cfg = Config::from_file(&file).unwrap_or_else(|e| panic!("{e}"));
        let p = cfg.problem_at("server.tls.cert", "bad".into());
        assert_eq!(
            p.to_string(),
            format!("{}:3:16: server.tls.cert: bad", file.display())
        );
        let p = Config::embedded_default().problem_at("server.tls", "m".into());
        assert_eq!(p.to_string(), "<embedded default>:1:1: server.tls: m");
    }
}
