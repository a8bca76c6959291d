//! [`Config`]: the whole file, its top-level table (`device`, `user`, `[server]`, `[[relay]]`,
//! `[[stream]]`, `[relay_server]`, `[log]`), and what it says about itself.

use super::error::{ConfigError, Escaped, Problem};
use super::relay::RelayConfig;
use super::server::{LogConfig, RelayServerConfig, ServerConfig, ServerTls};
use super::stream::StreamConfig;
use crate::files;
use crate::media::{AudioSpec, VideoSpec};
use serde::Deserialize;
use std::path::{Path, PathBuf};

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
    files::read(Path::new("/proc/sys/kernel/hostname"))
        .or_else(|_| files::read(Path::new("/etc/hostname")))
        .ok()
        .and_then(|h| String::from_utf8(h).ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| {
            !h.is_empty()
                && h.len() <= 64
                && h.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
        })
        .unwrap_or_else(|| "sioedge".into())
}

impl Config {
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
    pub(super) fn file_label(&self) -> String {
        self.source
            .as_ref()
            .map_or("<embedded default>".into(), |p| p.display().to_string())
    }
    /// One line describing what this config runs (printed by `check-config`), escaped like
    /// errors ([`Escaped`]).
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
        // Names and values from the file, so escaped: the line goes to a terminal, a log, and
        // systemd's STATUS= (where a newline would start another assignment).
        Escaped(&parts.join(", ")).to_string()
    }
    /// Makes every relative file path in the config relative to `base` (the file's directory).
    pub(super) fn rebase_paths(&mut self, base: &Path) {
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
