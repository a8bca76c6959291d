//! The TOML configuration file: schema, loading, validation and the embedded default.
//!
//! One file format serves `sioedge run` (`device`, `[server]`, `[[relay]]`, `[[stream]]`), and
//! `sioedge relay` (`[relay_server]`); `[log]` and `user` are common. Every problem is reported as
//! `FILE:LINE:COL: FIELD: MESSAGE` (see [`ConfigError`]). Conventions:
//! - durations ([`HumanDuration`]): `"25s"`, `"300ms"`, `"2m"`, or an integer number of
//!   milliseconds;
//! - sizes ([`ByteSize`]): `"1MiB"`, `"64KB"`, or an integer number of bytes;
//! - track settings (`[stream.video]`, `[stream.audio]`) are media's [`VideoSpec`](crate::media::VideoSpec)/[`AudioSpec`](crate::media::AudioSpec)
//!   and use plain numbers (`bitrate_kbps`, `keyframe_interval` in seconds, `frame_ms`);
//! - relative file paths are relative to the config file's directory.
//!
//! `target-configs/sioedge.example.toml` documents every option next to its default.
//! [`Config`] is `PartialEq` so a reload (SIGHUP) can diff streams and relays.

mod diff;
mod duration;
mod error;
mod file;
mod id;
mod listen;
mod load;
mod parse;
mod relay;
mod server;
mod size;
mod stream;
mod tokens;
mod units;
mod url;
mod validate;

pub use crate::files::{FileError, FileProblem};
pub use diff::Diff;
pub use duration::HumanDuration;
pub use error::{ConfigError, Escaped, Problem};
pub use file::Config;
pub use id::{ID_RULE, is_valid_id};
pub use load::DEFAULT_PATH;
pub use relay::{
    DEFAULT_CONNECT_TIMEOUT, QueueLimits, Reconnection, RelayConfig, TlsOptions, Transport,
    default_transports,
};
pub use server::{
    DEFAULT_SOCKETIO_PATH, DuplicatePublisher, LogConfig, RelayServerConfig, ServerConfig,
    ServerTls, ViewerAuth, state_dir,
};
pub use size::ByteSize;
pub use stream::StreamConfig;
