//! [`GatewayError`]: why `sioedge run` could not start.

use crate::config::ConfigError;
use crate::server::ServerTlsError;
use crate::service::{BindError, ServiceError};

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// The config cannot run a gateway.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address is unavailable.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// A `[[relay]]` cannot be set up.
    #[error("relay {relay}: {problem}")]
    Relay {
        /// The relay URL.
        relay: String,
        /// What is wrong.
        problem: String,
    },
    /// systemd notification setup, signal handlers or the privilege drop failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// `[server.tls]`: the certificate or key cannot be used (the error names the file).
    #[error("[server.tls] {0}")]
    Tls(#[from] ServerTlsError),
    /// Capture could not start.
    #[cfg(feature = "media")]
    #[error(transparent)]
    Media(#[from] crate::media::MediaError),
}
