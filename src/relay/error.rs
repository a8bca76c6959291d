//! [`RelayError`]: why `sioedge relay` could not start.

use super::redis_bus::BusError;
use crate::config::ConfigError;
use crate::server::ServerTlsError;
use crate::service::{BindError, ServiceError};

/// Why the relay could not start.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// The config cannot run a relay.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The listen address is unavailable.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The Redis adapter URL is unusable.
    #[error(transparent)]
    Adapter(#[from] BusError),
    /// systemd notification setup, signal handlers or the privilege drop failed.
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// `[relay_server.tls]`: the certificate or key cannot be used (the error names the file).
    #[error("[relay_server.tls] {0}")]
    Tls(#[from] ServerTlsError),
}
